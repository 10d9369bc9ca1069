/**
 * Pre-backup action commands are Go `text/template` strings
 * (action_definitions.command_template) that upstream's scheduler renders
 * with nil data (P/backup_scheduler.go renderSchedulerActionTemplate:
 * `tmpl.Execute(&buf, nil)`), and skips with a warning when parsing or
 * executing fails. This renders the same way, for the part of the template
 * language that means something with nil data. Pure.
 *
 * As Go, with nil data:
 * - text is copied; `{{/* comment *\/}}` prints nothing; `{{- ` and ` -}}`
 *   trim the white space before or after the action;
 * - `{{.}}`, `{{.Name}}`, `{{.A.B}}`, `{{$}}`, `{{$.Name}}` print
 *   `<no value>` (Go's text for a missing value);
 * - `"quoted"` and `` `raw` `` strings, decimal integers, `true`, `false`
 *   print themselves;
 * - `{{if X}} … {{else if Y}} … {{else}} … {{end}}` chooses by Go's truth
 *   (a missing value, "", 0 and false are false); `{{with .X}}` and
 *   `{{range .X}}` over a missing value take their `{{else}}`.
 *
 * Anything else — functions (`printf`, `eq`, …), pipelines (`|`),
 * parentheses, variables, `define`/`template`/`block`, `with`/`range` over a
 * literal — is refused as unsupported, and the action is skipped like one
 * upstream cannot parse. A broken template (`{{.X` unclosed, `{{end}}`
 * without an opener, `{{nil}}`) is refused as Go refuses it.
 */

export type RenderResult = { ok: true; text: string } | { ok: false; error: string };

const NO_VALUE = "<no value>";
type Value = { missing: true } | { missing: false; value: string | number | boolean };
type Node =
  | { kind: "text"; text: string }
  | { kind: "print"; value: Value }
  | { kind: "if" | "with" | "range"; cond: Value; then: Node[]; otherwise: Node[] };

class TemplateError extends Error {}

export function renderWithoutData(template: string): RenderResult {
  try {
    const tokens = lex(template);
    const parser = { tokens, i: 0 };
    const nodes = parseList(parser, []);
    if (parser.i < tokens.length) throw new TemplateError(`unexpected {{${(tokens[parser.i] as Action).words.join(" ")}}}`);
    return { ok: true, text: walk(nodes) };
  } catch (err) {
    if (err instanceof TemplateError) return { ok: false, error: err.message };
    throw err;
  }
}

type Action = { kind: "action"; words: string[] };
type Token = { kind: "text"; text: string } | Action;

/** Splits text from actions, applying trim markers; action words are lexed with quotes kept. */
function lex(src: string): Token[] {
  const out: Token[] = [];
  let pos = 0;
  let trimNext = false;
  for (;;) {
    const open = src.indexOf("{{", pos);
    let text = src.slice(pos, open === -1 ? src.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, "");
    if (open === -1) {
      if (text) out.push({ kind: "text", text });
      return out;
    }
    let start = open + 2;
    if (/^-[ \t\r\n]/.test(src.slice(start, start + 2))) {
      text = text.replace(/[ \t\r\n]+$/, "");
      start += 2;
    }
    if (text) out.push({ kind: "text", text });
    const { words, end, trimRight } = lexAction(src, start);
    if (!(words.length === 1 && words[0]!.startsWith("/*"))) out.push({ kind: "action", words });
    pos = end;
    trimNext = trimRight;
  }
}

function lexAction(src: string, start: number): { words: string[]; end: number; trimRight: boolean } {
  const rest = src.slice(start).replace(/^[ \t\r\n]+/, "");
  if (rest.startsWith("/*")) {
    const close = rest.indexOf("*/");
    if (close === -1) throw new TemplateError("unclosed comment");
    const after = rest.slice(close + 2);
    const m = /^( -)?\}\}/.exec(after);
    if (!m) throw new TemplateError("comment ends before closing delimiter");
    const end = src.length - after.length + m[0].length;
    return { words: [rest.slice(0, close + 2)], end, trimRight: m[1] !== undefined };
  }
  const words: string[] = [];
  let i = start;
  for (;;) {
    if (i >= src.length) throw new TemplateError("unclosed action");
    const c = src[i]!;
    if (/[ \t\r\n]/.test(c)) {
      if (src.startsWith("-}}", i + 1)) return { words, end: i + 4, trimRight: true };
      i++;
    } else if (src.startsWith("}}", i)) {
      return { words, end: i + 2, trimRight: false };
    } else if (c === '"' || c === "`") {
      const close = c === "`" ? src.indexOf("`", i + 1) : endOfQuoted(src, i);
      if (close === -1) throw new TemplateError("unterminated quoted string");
      words.push(src.slice(i, close + 1));
      i = close + 1;
    } else {
      let j = i;
      while (j < src.length && !/[ \t\r\n"`]/.test(src[j]!) && !src.startsWith("}}", j)) j++;
      words.push(src.slice(i, j));
      i = j;
    }
  }
}

function endOfQuoted(src: string, at: number): number {
  for (let i = at + 1; i < src.length; i++) {
    if (src[i] === "\\") i++;
    else if (src[i] === '"') return i;
    else if (src[i] === "\n") return -1;
  }
  return -1;
}

/** Parses until one of `stops` (an `end` or `else` word) and leaves it for the caller. */
function parseList(p: { tokens: Token[]; i: number }, stops: string[]): Node[] {
  const nodes: Node[] = [];
  while (p.i < p.tokens.length) {
    const t = p.tokens[p.i]!;
    if (t.kind === "text") {
      nodes.push(t);
      p.i++;
      continue;
    }
    const [first, ...args] = t.words;
    if (first === undefined) throw new TemplateError("missing value for command");
    if (stops.includes(first)) return nodes;
    if (first === "end" || first === "else") throw new TemplateError(`unexpected {{${first}}}`);
    p.i++;
    if (first === "if" || first === "with" || first === "range") nodes.push(parseBlock(p, first, args));
    else nodes.push({ kind: "print", value: operand(t.words) });
  }
  if (stops.length > 0) throw new TemplateError("unexpected EOF");
  return nodes;
}

function parseBlock(p: { tokens: Token[]; i: number }, kind: "if" | "with" | "range", args: string[]): Node {
  if (args.length === 0) throw new TemplateError(`missing value for ${kind}`);
  const cond = operand(args);
  if (kind !== "if" && !cond.missing) throw new TemplateError(`unsupported: {{${kind}}} over a literal`);
  const then = parseList(p, ["end", "else"]);
  const stop = p.tokens[p.i] as Action;
  p.i++;
  let otherwise: Node[] = [];
  if (stop.words[0] === "else") {
    const [, chained, ...rest] = stop.words;
    if (chained === undefined) {
      otherwise = parseList(p, ["end"]);
      p.i++;
    } else if (chained === kind && kind !== "range") {
      // `{{else if X}}` / `{{else with X}}`: a nested block sharing this one's {{end}}.
      otherwise = [parseBlock(p, kind, rest)];
    } else {
      throw new TemplateError(`unsupported: {{else ${chained}}}`);
    }
  } else if (stop.words.length > 1) {
    throw new TemplateError("unexpected words after end");
  }
  return { kind, cond, then, otherwise };
}

/** One operand; with nil data a field or `$` is a missing value. */
function operand(words: string[]): Value {
  if (words.length !== 1) throw new TemplateError(`unsupported: {{${words.join(" ")}}} (functions and pipelines are not rendered)`);
  const w = words[0]!;
  if (w === "." || w === "$" || /^(\$)?(\.[\p{L}_][\p{L}\p{N}_]*)+$/u.test(w)) return { missing: true };
  if (w === "nil") throw new TemplateError("nil is not a command");
  if (w === "true" || w === "false") return { missing: false, value: w === "true" };
  if (/^[+-]?(0|[1-9]\d*)$/.test(w) && Number.isSafeInteger(Number(w))) return { missing: false, value: Number(w) };
  if (w.startsWith("`")) return { missing: false, value: w.slice(1, -1).replace(/\r/g, "") };
  if (w.startsWith('"')) return { missing: false, value: unquote(w) };
  throw new TemplateError(`unsupported: {{${w}}}`);
}

const ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"' };

/** Go's strconv.Unquote for a double-quoted string (byte escapes above 0x7f refused: they need not be UTF-8). */
function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)/g, (_, e: string) => {
    if (e in ESCAPES) return ESCAPES[e]!;
    const code = /^[xuU]/.test(e) ? parseInt(e.slice(1), 16) : /^[0-7]{3}$/.test(e) ? parseInt(e, 8) : NaN;
    if (Number.isNaN(code)) throw new TemplateError(`invalid escape \\${e} in quoted string`);
    if ((e[0] === "x" || /^[0-7]/.test(e)) && code > 0x7f) throw new TemplateError(`unsupported: byte escape \\${e}`);
    if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) throw new TemplateError(`invalid escape \\${e} in quoted string`);
    return String.fromCodePoint(code);
  });
}

function truth(v: Value): boolean {
  return !v.missing && v.value !== "" && v.value !== 0 && v.value !== false;
}

function walk(nodes: Node[]): string {
  let out = "";
  for (const n of nodes) {
    if (n.kind === "text") out += n.text;
    else if (n.kind === "print") out += n.value.missing ? NO_VALUE : String(n.value.value);
    else out += walk(truth(n.cond) ? n.then : n.otherwise);
  }
  return out;
}
