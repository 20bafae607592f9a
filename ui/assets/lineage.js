// Renders the lineage graph of the version page (a Mermaid flowchart in
// <pre id="lineage-mermaid">) with the vendored mermaid.min.js. The page
// lists the same lineage as links without it.
(function () {
  var el = document.getElementById("lineage-mermaid");
  if (!el || typeof mermaid === "undefined") {
    return;
  }
  mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
  mermaid.run({ nodes: [el] }).then(function () {
    el.setAttribute("data-rendered", "svg");
  }, function (err) {
    el.setAttribute("data-render-error", String(err));
  });
})();
