/**
 * ANSI SGR ("Select Graphic Rendition") escape codes → styled text segments.
 * Game servers colour their console output; the viewer shows those colours
 * but never treats log text as markup: this parser only returns plain strings
 * and style values, which the page turns into text nodes and spans.
 *
 * Each log line is parsed on its own, starting from the default style: lines
 * arrive from several sources and a reconnect may start mid-stream, so a style
 * left open by one line must not bleed into the next.
 */

/** A palette index 0…255 or a "#rrggbb" true colour. */
export type Colour = number | string;

export interface Style {
  fg?: Colour;
  bg?: Colour;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
  inverse?: boolean;
  strike?: boolean;
}

export interface Segment {
  text: string;
  style: Style;
}

// CSI … final byte (ECMA-48: parameters 0x30–0x3F, intermediates 0x20–0x2F,
// final 0x40–0x7E), OSC … BEL or ST, and two-byte ESC sequences.
const ESCAPE = /\x1b(?:\[([0-?]*)[ -/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;
// Other C0 controls (and DEL) would show as boxes or move the cursor; tab stays.
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;
// C1 controls (U+0080-U+009F) and the bidirectional controls - embeddings
// and overrides U+202A-U+202E, isolates U+2066-U+2069, marks U+200E, U+200F,
// U+061C - act without being seen: an override makes a line read otherwise
// than it is (CVE-2021-42574, "Trojan Source"), and a log line is anyone's
// text. They are shown as "⟨U+202E⟩", never applied.
const INVISIBLE = /[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const HAS_CONTROL = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** `text` with C1 and bidi controls written out as ⟨U+XXXX⟩ (see INVISIBLE), for any text from a log. */
export function showInvisible(text: string): string {
  return text.replace(INVISIBLE, (c) => `⟨U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}⟩`);
}

/** Splits one line into styled segments; escape sequences other than SGR are dropped, C1 and bidi controls shown (showInvisible). */
export function parseAnsi(line: string): Segment[] {
  const out: Segment[] = [];
  let style: Style = {};
  let last = 0;
  const push = (text: string) => {
    const clean = showInvisible(text.replace(CONTROL, ""));
    if (clean === "") return;
    const prev = out[out.length - 1];
    if (prev && prev.style === style) prev.text += clean;
    else out.push({ text: clean, style });
  };
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(line); m !== null; m = ESCAPE.exec(line)) {
    push(line.slice(last, m.index));
    last = ESCAPE.lastIndex;
    if (m[2] === "m") style = applySgr(style, m[1] ?? "");
  }
  push(line.slice(last));
  return out;
}

/** The text without escape sequences, C1 and bidi controls shown: what search, copy and download use. */
export function stripAnsi(line: string): string {
  if (!line.includes("\x1b") && !HAS_CONTROL.test(line)) return line;
  return parseAnsi(line).map((s) => s.text).join("");
}

/** Applies one SGR parameter list; returns a new style object when anything changes. */
export function applySgr(current: Style, params: string): Style {
  // "ESC[m" is a reset; private-mode parameters ("<", "=", ">", "?") are not SGR.
  if (/[<=>?]/.test(params)) return current;
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
  const s: Style = { ...current };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c === 0) for (const k of Object.keys(s)) delete s[k as keyof Style];
    else if (c === 1) s.bold = true;
    else if (c === 2) s.dim = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 7) s.inverse = true;
    else if (c === 9) s.strike = true;
    else if (c === 22) {
      delete s.bold;
      delete s.dim;
    }
    else if (c === 23) delete s.italic;
    else if (c === 24) delete s.underline;
    else if (c === 27) delete s.inverse;
    else if (c === 29) delete s.strike;
    else if (c >= 30 && c <= 37) s.fg = c - 30;
    else if (c >= 90 && c <= 97) s.fg = c - 90 + 8;
    else if (c >= 40 && c <= 47) s.bg = c - 40;
    else if (c >= 100 && c <= 107) s.bg = c - 100 + 8;
    else if (c === 39) delete s.fg;
    else if (c === 49) delete s.bg;
    else if (c === 38 || c === 48) {
      const [colour, used] = extendedColour(codes, i + 1);
      i += used;
      if (colour !== undefined) s[c === 38 ? "fg" : "bg"] = colour;
    }
  }
  return s;
}

/** "5;n" (256-colour palette) or "2;r;g;b" (true colour) after a 38/48. */
function extendedColour(codes: number[], at: number): [Colour | undefined, number] {
  const mode = codes[at];
  if (mode === 5) {
    const n = codes[at + 1];
    return [n !== undefined && n >= 0 && n <= 255 ? n : undefined, 2];
  }
  if (mode === 2) {
    const rgb = codes.slice(at + 1, at + 4);
    if (rgb.length < 3 || rgb.some((v) => !(v >= 0 && v <= 255))) return [undefined, 1 + rgb.length];
    return ["#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join(""), 4];
  }
  return [undefined, mode === undefined ? 0 : 1];
}

/**
 * RGB for palette indices 16…255 (the xterm 6×6×6 cube and grey ramp).
 * 0…15 are themed by CSS classes instead, so they follow the page's palette.
 */
export function paletteRgb(n: number): string {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return rgb(v, v, v);
  }
  const i = n - 16;
  const level = (x: number) => (x === 0 ? 0 : 55 + x * 40);
  return rgb(level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6));
}

function rgb(r: number, g: number, b: number): string {
  return "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
}

export interface Piece extends Segment {
  /** Part of a search match. */
  match: boolean;
}

/**
 * Cuts segments at match boundaries so matches can be highlighted without
 * losing their colours. `ranges` are [start, end) offsets into the plain text
 * (the segments' texts joined), sorted and not overlapping.
 */
export function splitByRanges(segments: Segment[], ranges: [number, number][]): Piece[] {
  const out: Piece[] = [];
  let offset = 0;
  let r = 0;
  for (const seg of segments) {
    const end = offset + seg.text.length;
    let pos = offset;
    while (pos < end) {
      while (r < ranges.length && ranges[r]![1] <= pos) r++;
      const range = ranges[r];
      let cut: number;
      let match: boolean;
      if (range === undefined || range[0] >= end) (cut = end), (match = false);
      else if (range[0] > pos) (cut = range[0]), (match = false);
      else (cut = Math.min(range[1], end)), (match = true);
      out.push({ text: seg.text.slice(pos - offset, cut - offset), style: seg.style, match });
      pos = cut;
    }
    offset = end;
  }
  return out;
}

/** Case-insensitive occurrences of `query` in `text`, as [start, end) ranges. */
export function findMatches(text: string, query: string): [number, number][] {
  if (query === "") return [];
  const hay = text.toLowerCase();
  const needle = query.toLowerCase();
  const out: [number, number][] = [];
  for (let i = hay.indexOf(needle); i !== -1; i = hay.indexOf(needle, i + needle.length)) out.push([i, i + needle.length]);
  return out;
}
