#!/usr/bin/env bash
# Checks deploy/prometheus and deploy/grafana (docs/operations.md, "Alerts"): `promtool check rules` and
# `promtool test rules` (alerts.test.yaml makes each alert fire and stay quiet), `promtool check config` of the example
# prometheus.yml, that the Grafana dashboard is valid JSON with a PromQL query in every panel, and that every metric
# name in the rules and the dashboard is one the service exports (the names in Sources, as the registry writes them)
# or `up`. Installs Debian's `prometheus` package for promtool when missing; its daemon is never started here.
# Takes a few seconds once promtool is installed.
set -euo pipefail
SCRIPT_NAME=alerts-check
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

if ! command -v promtool >/dev/null 2>&1; then
    # Debian's package starts its daemon on install where an init system lets it: stop one that appears with it.
    before=$(pgrep -x prometheus || true)
    ensure_packages prometheus python3
    for pid in $(pgrep -x prometheus || true); do
        grep -qx "$pid" <<<"$before" || { log "stopping the prometheus daemon the package started ($pid)"; kill "$pid"; }
    done
fi
ensure_packages python3

log "promtool check rules / test rules / check config"
promtool check rules deploy/prometheus/alerts.yaml
(cd deploy/prometheus && promtool test rules alerts.test.yaml)
promtool check config --syntax-only deploy/prometheus/prometheus.yml

log "metric names of the rules and the dashboard against those the service exports"
python3 - deploy/prometheus/alerts.yaml deploy/grafana/sms-reseller.json <<'EOF'
import json, pathlib, re, sys

rules_path, dashboard_path = sys.argv[1], sys.argv[2]

# What the service exports: every MetricNameDescriptor in Sources, written as the registry writes it
# (metricName_unitName, or metricName alone when the unit is empty), histograms with their series.
exported, histograms = set(), set()
descriptor = re.compile(r'metricName:\s*"([a-z_:][a-z0-9_:]*)",\s*unitName:\s*"([a-z_]*)"', re.S)
for path in pathlib.Path("Sources").rglob("*.swift"):
    text = path.read_text()
    for match in descriptor.finditer(text):
        name = match.group(1) + ("_" + match.group(2) if match.group(2) else "")
        exported.add(name)
        # A histogram's descriptor is the argument of makeDurationHistogram / makeValueHistogram.
        before = text[max(0, match.start() - 200):match.start()]
        if re.search(r"make(Duration|Value)Histogram\(\s*descriptor:\s*\.init\(\s*$", before):
            histograms.add(name)
for name in histograms:
    exported |= {name + "_bucket", name + "_count", name + "_sum"}
exported.add("up")  # Prometheus's own, per target
if len(exported) < 20:
    sys.exit(f"found only {len(exported)} metric names in Sources: the pattern no longer matches the code")

functions = {
    "abs", "avg", "by", "bottomk", "ceil", "changes", "clamp_max", "clamp_min", "count", "delta", "deriv", "floor",
    "group", "histogram_quantile", "humanize", "humanizeDuration", "humanizePercentage", "idelta", "increase",
    "irate", "label_values", "max", "max_over_time", "min", "min_over_time", "offset", "or", "and", "unless",
    "on", "ignoring", "group_left", "group_right", "without", "rate", "sum", "topk", "avg_over_time", "bool",
    "absent", "time", "vector", "scalar", "quantile", "stddev", "resets", "round", "sort", "sort_desc", "inf", "nan",
}

def names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)            # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                        # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                       # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)                      # Grafana variables
    found = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", expr):
        word = match.group(1)
        rest = expr[match.end():].lstrip()
        if word in functions or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        found.add(word)
    return found

problems, used = [], {}
rule_text = pathlib.Path(rules_path).read_text()
# The rules file is YAML; its expressions are the `expr:` values (plain or block scalars).
for match in re.finditer(r"^\s*expr:\s*(\|\s*\n((?:\s{10,}.*\n)+)|(.*)$)", rule_text, re.M):
    expr = match.group(2) if match.group(2) is not None else match.group(3)
    for name in names(expr):
        used.setdefault(name, set()).add(rules_path)

dashboard = json.loads(pathlib.Path(dashboard_path).read_text())
for panel in dashboard["panels"]:
    if panel.get("type") == "row":
        continue
    targets = panel.get("targets") or []
    if not targets or not all(target.get("expr") for target in targets):
        problems.append(f"{dashboard_path}: panel {panel.get('title')!r} has no PromQL query")
    for target in targets:
        for name in names(target.get("expr", "")):
            used.setdefault(name, set()).add(dashboard_path)

for name, where in sorted(used.items()):
    if name not in exported:
        problems.append(f"{', '.join(sorted(where))}: {name} is not a metric the service exports")
if problems:
    sys.exit("\n".join(problems))
print(f"{len(used)} metric names used, all exported ({len(exported)} known)")
EOF
log "alert rules, their tests, the scrape configuration and the dashboard are fine"
