import { describe, expect, test } from "bun:test";
import { findMatches, paletteRgb, parseAnsi, splitByRanges, stripAnsi } from "./ansi.ts";

describe("parseAnsi", () => {
  test("plain text is one unstyled segment", () => {
    expect(parseAnsi("Server started")).toEqual([{ text: "Server started", style: {} }]);
  });

  test("basic and bright colours, bold and reset", () => {
    expect(parseAnsi("\x1b[31mred\x1b[0m \x1b[1;92mok\x1b[m!")).toEqual([
      { text: "red", style: { fg: 1 } },
      { text: " ", style: {} },
      { text: "ok", style: { bold: true, fg: 10 } },
      { text: "!", style: {} },
    ]);
  });

  test("256-colour and true colour, foreground and background", () => {
    expect(parseAnsi("\x1b[38;5;208;48;2;0;128;255mx")).toEqual([{ text: "x", style: { fg: 208, bg: "#0080ff" } }]);
    expect(parseAnsi("\x1b[38:2:1:2:3my")).toEqual([{ text: "y", style: { fg: "#010203" } }]);
  });

  test("attributes switch off one by one", () => {
    const segs = parseAnsi("\x1b[1;3;4;7;9ma\x1b[22;23;24;27;29mb\x1b[33;44mc\x1b[39;49md");
    expect(segs.map((s) => [s.text, s.style])).toEqual([
      ["a", { bold: true, italic: true, underline: true, inverse: true, strike: true }],
      ["b", {}],
      ["c", { fg: 3, bg: 4 }],
      ["d", {}],
    ]);
  });

  test("non-SGR sequences, OSC titles and control characters are dropped", () => {
    expect(stripAnsi("\x1b[2K\x1b[1Gdone\x1b]0;title\x07 \x1b[?25lhidden\x07\x08\tend\x1b")).toBe("done hidden\tend");
  });

  test("C1 controls and bidi overrides, isolates and marks are shown as ⟨U+XXXX⟩, never applied; colours still work around them", () => {
    // "Trojan Source": an override that would show "admin" reversed and hide what follows.
    expect(stripAnsi("user=\u202Enimda\u202C ok")).toBe("user=⟨U+202E⟩nimda⟨U+202C⟩ ok");
    for (const c of ["\u202A", "\u202B", "\u202C", "\u202D", "\u202E", "\u2066", "\u2067", "\u2068", "\u2069", "\u200E", "\u200F", "\u061C"]) {
      const code = c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
      expect(stripAnsi(`a${c}b`)).toBe(`a⟨U+${code}⟩b`);
    }
    for (let cp = 0x80; cp <= 0x9f; cp++) {
      expect(stripAnsi(`x${String.fromCharCode(cp)}y`)).toBe(`x⟨U+00${cp.toString(16).toUpperCase()}⟩y`);
    }
    expect(parseAnsi("\x1b[31mred\u202Eevil\x1b[0m\u009B")).toEqual([
      { text: "red⟨U+202E⟩evil", style: { fg: 1 } },
      { text: "⟨U+009B⟩", style: {} },
    ]);
    // Text around them, and ordinary non-ASCII (accents, right-to-left scripts, emoji), is untouched.
    expect(stripAnsi("café ñ שלום 🎮 \u00A0 \u00FF")).toBe("café ñ שלום 🎮 \u00A0 \u00FF");
    expect(stripAnsi("\t\x07bell")).toBe("\tbell");
  });

  test("malformed sequences do not throw and keep the text", () => {
    expect(stripAnsi("\x1b[38;5mA\x1b[38;2;1mB\x1b[999mC")).toBe("ABC");
    expect(parseAnsi("\x1b[38;5;300mZ")).toEqual([{ text: "Z", style: {} }]);
  });

  test("markup is just text", () => {
    expect(parseAnsi("<script>alert(1)</script>")).toEqual([{ text: "<script>alert(1)</script>", style: {} }]);
  });
});

test("paletteRgb covers the colour cube and the grey ramp", () => {
  expect(paletteRgb(16)).toBe("#000000");
  expect(paletteRgb(196)).toBe("#ff0000");
  expect(paletteRgb(231)).toBe("#ffffff");
  expect(paletteRgb(232)).toBe("#080808");
  expect(paletteRgb(255)).toBe("#eeeeee");
});

describe("search highlighting", () => {
  test("findMatches is case-insensitive and does not overlap", () => {
    expect(findMatches("Error: error ERRor", "error")).toEqual([
      [0, 5],
      [7, 12],
      [13, 18],
    ]);
    expect(findMatches("aaaa", "aa")).toEqual([
      [0, 2],
      [2, 4],
    ]);
    expect(findMatches("abc", "")).toEqual([]);
  });

  test("splitByRanges cuts across coloured segments and keeps their styles", () => {
    const segs = parseAnsi("\x1b[31mhello\x1b[32mworld");
    const pieces = splitByRanges(segs, findMatches("helloworld", "lowo"));
    expect(pieces.map((p) => [p.text, p.style.fg, p.match])).toEqual([
      ["hel", 1, false],
      ["lo", 1, true],
      ["wo", 2, true],
      ["rld", 2, false],
    ]);
  });

  test("splitByRanges without ranges returns the segments", () => {
    const segs = parseAnsi("a\x1b[1mb");
    expect(splitByRanges(segs, []).map((p) => p.text).join("")).toBe("ab");
  });
});
