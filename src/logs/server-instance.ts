/**
 * Sequence numbers belong to one process's hub (CONTRACT §5): after a
 * restart, or on another replica, they start again at 1. Each process has a
 * random instance id, the same for the SessionViewer and StreamSessionLogs.
 * The SessionViewer gives it in its answer (`server_instance_id`) and, on an
 * error, in this response header; every StreamSessionLogs response carries
 * it in this header, before any line, so a client sees when the numbering it
 * resumes from is another process's. A client that sends the id its number
 * belongs to in this request header gets, from another process, that
 * process's whole buffer instead of the lines after a number that means
 * nothing there (docs/replicas.md).
 */
export const SERVER_INSTANCE_HEADER = "manman-server-instance";
