/**
 * Sequence numbers belong to one process's hub (CONTRACT §5): after a
 * restart, or on another replica, they start again at 1. The SessionViewer
 * names the answering process with a random id, in its answer
 * (`server_instance_id`) and, on an error, in this response header, so a
 * viewer can tell that the numbering it resumes from started again.
 */
export const SERVER_INSTANCE_HEADER = "manman-server-instance";
