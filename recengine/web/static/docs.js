// The offline docs page: renders /api/v1/openapi.json (read with the page's session cookie).

import { el } from "./views.js";

function schemaText(schema) {
  return schema ? JSON.stringify(schema, null, 1).replace(/\n\s*/g, " ") : "";
}

async function main() {
  const response = await fetch("/api/v1/openapi.json", { credentials: "same-origin" });
  if (!response.ok) {
    document.getElementById("docs-error").textContent =
      response.status === 401 ? "Log in on the main page first to read the document here." : response.statusText;
    return;
  }
  const doc = await response.json();
  const box = document.getElementById("endpoints");
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const section = el("section", {}, el("h3", {}, el("code", { text: `${method.toUpperCase()} ${path}` })),
        el("p", { text: op.summary }));
      if (op.parameters.length) {
        section.append(el("ul", {}, ...op.parameters.map((p) => el("li", {},
          el("code", { text: p.name }), ` (${p.in}${p.required ? ", required" : ""}) ${schemaText(p.schema)}`,
          p.description ? ` — ${p.description}` : ""))));
      }
      const body = op.requestBody?.content?.["application/json"]?.schema;
      if (body) section.append(el("p", {}, "JSON body: ", el("code", { text: schemaText(body) })));
      box.append(section);
    }
  }
}

main();
