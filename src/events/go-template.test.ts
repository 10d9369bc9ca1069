import { describe, expect, test } from "bun:test";
import { renderWithoutData } from "./go-template.ts";

const ok = (template: string) => {
  const r = renderWithoutData(template);
  if (!r.ok) throw new Error(`refused ${JSON.stringify(template)}: ${r.error}`);
  return r.text;
};
const refused = (template: string) => {
  const r = renderWithoutData(template);
  if (r.ok) throw new Error(`rendered ${JSON.stringify(template)} as ${JSON.stringify(r.text)}`);
  return r.error;
};

// Expected texts follow Go's text/template (lex.go, parse.go, exec.go) for
// template.New("action").Parse(t).Execute(&buf, nil): a missing value
// prints "<no value>", an invalid value is false, range over it runs else.
describe("rendering an action template with nil data, as upstream's scheduler does", () => {
  test("plain commands are copied as they are", () => {
    expect(ok("save-all")).toBe("save-all");
    expect(ok("say Backup in 10 seconds!")).toBe("say Backup in 10 seconds!");
    expect(ok("")).toBe("");
    expect(ok("a } b }} c")).toBe("a } b }} c");
  });
  test("fields, dot and $ have no value", () => {
    expect(ok("say {{.message}}")).toBe("say <no value>");
    expect(ok("{{.}}|{{$}}|{{.A.B}}|{{$.x}}|{{ .Émoji_1 }}")).toBe("<no value>|<no value>|<no value>|<no value>|<no value>");
  });
  test("literals print themselves", () => {
    expect(ok('say {{"hello \\"you\\"\\n"}}')).toBe('say hello "you"\n');
    expect(ok("{{`raw \\n`}}")).toBe("raw \\n");
    expect(ok("{{42}} {{-7}} {{true}} {{false}}")).toBe("42 -7 true false");
    expect(ok('{{"}}"}}')).toBe("}}");
    expect(ok('{{"\\u00e9\\x41"}}')).toBe("éA");
  });
  test("comments print nothing; trim markers eat the white space beside them", () => {
    expect(ok("a {{/* note */}} b")).toBe("a  b");
    expect(ok("a \n {{- /* note */ -}} \n b")).toBe("ab");
    expect(ok("a   {{- .x }}   b")).toBe("a<no value>   b");
    expect(ok("a   {{ .x -}}   b")).toBe("a   <no value>b");
  });
  test("if, with and range choose their else branch for a missing value", () => {
    expect(ok("{{if .force}}stop now{{else}}save{{end}}")).toBe("save");
    expect(ok("{{if .a}}A{{else if .b}}B{{else if 1}}C{{else}}D{{end}}")).toBe("C");
    expect(ok('{{if ""}}x{{end}}{{if 0}}y{{end}}{{if "s"}}z{{end}}')).toBe("z");
    expect(ok("{{with .who}}hi {{.}}{{else}}nobody{{end}}")).toBe("nobody");
    expect(ok("{{range .items}}{{.}}{{else}}none{{end}}!")).toBe("none!");
    expect(ok("{{if .x}}{{if .y}}a{{end}}{{end}}b")).toBe("b");
  });
  test("what Go itself refuses is refused", () => {
    expect(refused("say {{.message")).toBe("unclosed action");
    expect(refused("{{end}}")).toBe("unexpected {{end}}");
    expect(refused("{{if .x}}a")).toBe("unexpected EOF");
    expect(refused("{{nil}}")).toBe("nil is not a command");
    expect(refused("{{}}")).toBe("missing value for command");
    expect(refused("{{if}}x{{end}}")).toBe("missing value for if");
    expect(refused("{{/* open")).toBe("unclosed comment");
    expect(refused('{{"\\q"}}')).toContain("invalid escape");
  });
  test("functions, pipelines and variables are refused as unsupported, so the action is left out", () => {
    for (const t of ['{{printf "%s" .x}}', "{{.x | html}}", "{{(.x)}}", "{{$v := 1}}", '{{template "t"}}', "{{with 1}}x{{end}}", "{{range $i, $e := .x}}{{end}}"]) {
      expect(refused(t)).toStartWith("unsupported");
    }
  });
});
