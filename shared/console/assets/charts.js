// Draws the console's charts with Apache ECharts (served beside this file). Each chart is a
// <div class="chart" data-chart="ID"> with its ECharts option in
// <script type="application/json" id="ID">: data, not code, so the page needs no inline script.
// The tables under every chart hold the same numbers, for readers without JavaScript.
(function () {
  "use strict";
  if (!window.echarts) { return; }
  var charts = [];
  var nodes = document.querySelectorAll("div.chart[data-chart]");
  for (var i = 0; i < nodes.length; i++) {
    var el = nodes[i];
    var src = document.getElementById(el.getAttribute("data-chart"));
    if (!src) { continue; }
    var option;
    try { option = JSON.parse(src.textContent); } catch (e) { continue; }
    el.style.display = "block"; // hidden until drawn (see console.css)
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption(option);
    el.setAttribute("data-rendered", "true");
    charts.push(chart);
  }
  window.addEventListener("resize", function () {
    for (var j = 0; j < charts.length; j++) { charts[j].resize(); }
  });
})();
