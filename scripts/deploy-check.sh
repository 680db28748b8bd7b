#!/usr/bin/env bash
# Checks what deploy/ holds without running it (no container engine nor Kubernetes on the project's machines; the
# Debian package is run by scripts/deb-check.sh, nginx by scripts/lb-check.sh). A few seconds, no build; the last
# line is "N passed, N failed", the exit status non-zero on any failure. scripts/test.sh runs it.
#   - every YAML file parses (yaml.safe_load_all);
#   - every environment variable the files set is a setting sms-reseller reads (the environment("…") names of
#     Sources/sms-reseller/SMSResellerCommand.swift) and is documented in docs/configuration.md; deploy/debian/env
#     lists every one of them;
#   - the subcommands the files run exist; the paths probed (/health/live, /health/ready, /metrics) are the
#     service's (openapi.yaml); the ports agree (PORT, containerPort, probes, Service, Prometheus, HEALTHCHECK);
#   - Kubernetes: the Deployment's probes, resources and security context, the migration Job, the
#     PodDisruptionBudget's and the Service's selectors matching the pods, the Secret's keys;
#   - compose: PostgreSQL, the migration one-shot before two instances, Prometheus scraping both;
#   - the Containerfile: a swift:6 build stage with --static-swift-stdlib, a Debian slim run stage with the run-time
#     libraries, a non-root user, a HEALTHCHECK on /health/live, the resource bundle of the migrations copied;
#   - the systemd units: their hardening settings, and the exposure score of `systemd-analyze security --offline=yes`
#     is the one docs/deployment.md quotes;
#   - deploy/nginx/sms-reseller.conf passes requests on after errors and timeouts only, never non_idempotent.
set -euo pipefail
SCRIPT_NAME=deploy-check
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

python3 -c 'import yaml' 2>/dev/null || ensure_packages python3-yaml

exposure() { # the exposure figure of a unit file, "" when systemd-analyze cannot tell here
    command -v systemd-analyze >/dev/null 2>&1 || return 0
    systemd-analyze security --offline=yes "$1" 2>/dev/null | sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
SERVICE_EXPOSURE=$(exposure deploy/systemd/sms-reseller.service) \
MIGRATE_EXPOSURE=$(exposure deploy/systemd/sms-reseller-migrate.service) \
python3 - <<'PY'
import glob, os, re, sys
import yaml

passed = failed = 0
def check(description, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {description}")
    else:
        failed += 1
        print(f"  FAIL  {description}" + (f": {detail}" if detail else ""))

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

# What the service really reads and documents.
command = read("Sources/sms-reseller/SMSResellerCommand.swift")
settings = set(re.findall(r'environment\("([A-Z0-9_]+)"\)', command))
settings |= set(re.findall(r'env: "([A-Z0-9_]+)"', command))
configuration = read("docs/configuration.md")
documented = set(re.findall(r"\|\s*`--[a-z0-9-]+`\s*\|\s*`([A-Z0-9_]+)(?:=[^`]*)?`", configuration))
subcommands = {"serve", "migrate", "admin", "export", "verify-ledger", "invoice-run"}
check("the service's settings were found (SMSResellerCommand.swift, configuration.md)", len(settings) > 30 and len(documented) > 30,
      f"{len(settings)} read, {len(documented)} documented")
check("every setting the service reads is documented in configuration.md", settings <= documented,
      ", ".join(sorted(settings - documented)))
openapi = yaml.safe_load(read("openapi.yaml"))
paths = set(openapi.get("paths", {}))
check("openapi.yaml has /health/live, /health/ready and /metrics", {"/health/live", "/health/ready", "/metrics"} <= paths,
      ", ".join(sorted({"/health/live", "/health/ready", "/metrics"} - paths)))

# 1. Every YAML file parses.
documents = {}
for path in sorted(glob.glob("deploy/**/*.yaml", recursive=True) + glob.glob("deploy/**/*.yml", recursive=True)):
    try:
        documents[path] = [d for d in yaml.safe_load_all(read(path)) if d is not None]
        check(f"{path} parses", True)
    except yaml.YAMLError as error:
        documents[path] = []
        check(f"{path} parses", False, str(error).splitlines()[0])

def names_known(where, names):
    names = set(names)
    unknown = names - settings
    check(f"{where}: every environment variable is a setting of sms-reseller ({len(names)})", not unknown,
          ", ".join(sorted(unknown)))

# 2. The environment file of the package.
env_file = read("deploy/debian/env")
env_names = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", env_file, re.M))
names_known("deploy/debian/env", env_names)
check("deploy/debian/env lists every setting", settings <= env_names, ", ".join(sorted(settings - env_names)))
check("deploy/debian/env sets nothing (all commented out, no secret)",
      not [l for l in env_file.splitlines() if l.strip() and not l.lstrip().startswith("#")])

# 3. Kubernetes.
kube = {}
for path in glob.glob("deploy/kubernetes/*.yaml"):
    for document in documents.get(path, []):
        kube[(document.get("kind"), document.get("metadata", {}).get("name"))] = document
kinds = {kind for kind, _ in kube}
check("kubernetes: a Deployment, a Job, a PodDisruptionBudget, a Service, a Secret, a ConfigMap",
      {"Deployment", "Job", "PodDisruptionBudget", "Service", "Secret", "ConfigMap"} <= kinds, str(sorted(kinds)))
secret = next((d for (k, _), d in kube.items() if k == "Secret"), {})
config_map = next((d for (k, _), d in kube.items() if k == "ConfigMap"), {})
secret_keys = set(secret.get("stringData", {}) or {}) | set(secret.get("data", {}) or {})
check("kubernetes: the Secret holds DATABASE_URL and UPSTREAM_CREDENTIALS_KEY",
      {"DATABASE_URL", "UPSTREAM_CREDENTIALS_KEY"} <= secret_keys, str(sorted(secret_keys)))
names_known("kubernetes Secret and ConfigMap", secret_keys | set(config_map.get("data", {}) or {}))
port = int((config_map.get("data") or {}).get("PORT", 8080))

def containers_of(document):
    return document.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])

def env_refs(container):
    names = {e["name"] for e in container.get("env", [])}
    refs = {r.get("secretRef", r.get("configMapRef", {})).get("name") for r in container.get("envFrom", [])}
    return names, refs

deployment = next((d for (k, _), d in kube.items() if k == "Deployment"), {})
job = next((d for (k, _), d in kube.items() if k == "Job"), {})
pod_labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
for container in containers_of(deployment):
    args = container.get("args", [])
    check("kubernetes Deployment: runs `serve`", args[:1] == ["serve"], str(args))
    names, refs = env_refs(container)
    names_known("kubernetes Deployment env", names)
    check("kubernetes Deployment: takes its environment from the Secret and the ConfigMap",
          {secret.get("metadata", {}).get("name"), config_map.get("metadata", {}).get("name")} <= refs, str(refs))
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    check(f"kubernetes Deployment: containerPort is PORT ({port})", port in ports.values(), str(ports))
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        get = container.get(probe, {}).get("httpGet", {})
        probe_port = get.get("port")
        probe_port = ports.get(probe_port, probe_port)
        check(f"kubernetes Deployment: {probe} GET {path} on the service's port",
              get.get("path") == path and probe_port == port, str(get))
    resources = container.get("resources", {})
    check("kubernetes Deployment: cpu and memory requests and limits",
          all(resources.get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")), str(resources))
    security = container.get("securityContext", {})
    check("kubernetes Deployment: no privilege escalation, read-only root, all capabilities dropped",
          security.get("allowPrivilegeEscalation") is False and security.get("readOnlyRootFilesystem") is True
          and "ALL" in security.get("capabilities", {}).get("drop", []), str(security))
pod_security = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("securityContext", {})
check("kubernetes Deployment: runs as non-root", pod_security.get("runAsNonRoot") is True and pod_security.get("runAsUser", 0) != 0)
check("kubernetes Deployment: grace period of at least 60 s (graceful stop)",
      deployment.get("spec", {}).get("template", {}).get("spec", {}).get("terminationGracePeriodSeconds", 30) >= 60)
check("kubernetes Deployment: selector matches its pods",
      all(pod_labels.get(k) == v for k, v in deployment.get("spec", {}).get("selector", {}).get("matchLabels", {}).items()))
for container in containers_of(job):
    check("kubernetes Job: runs `migrate`", container.get("args", [])[:1] == ["migrate"], str(container.get("args")))
    names, refs = env_refs(container)
    check("kubernetes Job: the same Secret and ConfigMap", secret.get("metadata", {}).get("name") in refs, str(refs))
check("kubernetes Job: restartPolicy OnFailure or Never",
      job.get("spec", {}).get("template", {}).get("spec", {}).get("restartPolicy") in ("OnFailure", "Never"))
pdb = next((d for (k, _), d in kube.items() if k == "PodDisruptionBudget"), {})
pdb_selector = pdb.get("spec", {}).get("selector", {}).get("matchLabels", {})
check("kubernetes PodDisruptionBudget: selects the Deployment's pods, keeps one",
      pdb_selector and all(pod_labels.get(k) == v for k, v in pdb_selector.items())
      and (pdb.get("spec", {}).get("minAvailable") or pdb.get("spec", {}).get("maxUnavailable")))
service = next((d for (k, _), d in kube.items() if k == "Service"), {})
service_selector = service.get("spec", {}).get("selector", {})
check("kubernetes Service: selects the Deployment's pods",
      service_selector and all(pod_labels.get(k) == v for k, v in service_selector.items()))
container_ports = {p.get("name"): p.get("containerPort") for c in containers_of(deployment) for p in c.get("ports", [])}
targets = [p.get("targetPort") for p in service.get("spec", {}).get("ports", [])]
check("kubernetes Service: targets the service's port",
      targets and all(container_ports.get(t, t) == port for t in targets), str(targets))
kustomization = next((d for d in documents.get("deploy/kubernetes/kustomization.yaml", [])), {})
listed = set(kustomization.get("resources", []))
present = {os.path.basename(p) for p in glob.glob("deploy/kubernetes/*.yaml")} - {"kustomization.yaml"}
check("kubernetes kustomization lists every manifest", listed == present, str(sorted(present ^ listed)))

# 4. Compose.
compose = (documents.get("deploy/compose/compose.yaml") or [{}])[0]
services = compose.get("services", {})
instances = [n for n, s in services.items() if (s.get("command") or [None])[0] == "serve"]
migrate = [n for n, s in services.items() if (s.get("command") or [None])[0] == "migrate"]
check("compose: PostgreSQL, a migration one-shot, two service instances, Prometheus",
      "postgres" in services and len(migrate) == 1 and len(instances) >= 2 and "prometheus" in services,
      f"instances {instances}, migrate {migrate}")
for name in instances:
    service_ = services[name]
    names_known(f"compose {name}", (service_.get("environment") or {}).keys())
    check(f"compose {name}: starts after the migrations completed",
          (service_.get("depends_on") or {}).get(migrate[0] if migrate else "", {}).get("condition") == "service_completed_successfully")
    check(f"compose {name}: listens on PORT {port} inside", str((service_.get("environment") or {}).get("PORT")) == str(port)
          and any(str(p).endswith(f":{port}") for p in service_.get("ports", [])), str(service_.get("ports")))
if migrate:
    names_known("compose migrate", (services[migrate[0]].get("environment") or {}).keys())
    check("compose migrate: waits for a healthy PostgreSQL, is not restarted",
          (services[migrate[0]].get("depends_on") or {}).get("postgres", {}).get("condition") == "service_healthy"
          and str(services[migrate[0]].get("restart")) == "no")
postgres_build = services.get("postgres", {}).get("build") or {}
postgres_file = os.path.join("deploy/compose", postgres_build.get("context", ""), postgres_build.get("dockerfile", ""))
check("compose postgres: built from a Containerfile that installs pg_partman 4",
      os.path.isfile(postgres_file)
      and re.search(r"postgresql-15-partman=4\.", read(os.path.normpath(postgres_file))) is not None, postgres_file)
prometheus = (documents.get("deploy/compose/prometheus.yml") or [{}])[0]
scrape = [t for job_ in prometheus.get("scrape_configs", []) for c in job_.get("static_configs", []) for t in c.get("targets", [])]
paths_ = {job_.get("metrics_path", "/metrics") for job_ in prometheus.get("scrape_configs", [])}
check("compose Prometheus: scrapes /metrics of every instance on its port",
      paths_ == {"/metrics"} and sorted(scrape) == sorted(f"{n}:{port}" for n in instances), str(scrape))

# 5. The Containerfile.
containerfile = read("deploy/container/Containerfile")
stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", containerfile, re.M)
arguments = dict(re.findall(r"^ARG\s+([A-Z_]+)=(\S+)", containerfile, re.M))
def resolve(image):
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: arguments.get(m.group(1), m.group(0)), image)
images = [resolve(image) for image, _ in stages]
check("Containerfile: a swift:6 build stage and a Debian slim run stage",
      len(images) == 2 and re.match(r"swift:6\.", images[0]) and re.match(r"debian:[a-z0-9]+-slim$", images[1]), str(images))
check("Containerfile: builds release with Swift's runtime linked statically",
      "swift build -c release" in containerfile and "--static-swift-stdlib" in containerfile)
check("Containerfile: copies the resource bundle of the migrations beside the binary",
      "sms-reseller_ResellerCore.resources" in containerfile)
run_stage = containerfile.split("\nFROM ")[-1]
for package in ("libpq5", "libhpdf-2.3.0", "zlib1g", "libstdc++6", "fonts-dejavu-core", "ca-certificates"):
    check(f"Containerfile: the run stage installs {package}", re.search(rf"\s{re.escape(package)}(\s|$)", run_stage) is not None)
user = re.findall(r"^USER\s+(\S+)", run_stage, re.M)
check("Containerfile: runs as a non-root user", user and user[-1].split(":")[0] not in ("root", "0"), str(user))
check("Containerfile: HEALTHCHECK on /health/live", re.search(r"^HEALTHCHECK[\s\S]*?/health/live", run_stage, re.M) is not None)
check(f"Containerfile: PORT {port} and EXPOSE {port}", f"PORT={port}" in run_stage and re.search(rf"^EXPOSE\s+{port}\b", run_stage, re.M))
check("Containerfile: ENTRYPOINT sms-reseller, CMD serve",
      re.search(r'^ENTRYPOINT \["[^"]*sms-reseller"\]', run_stage, re.M) and re.search(r'^CMD \["serve"\]', run_stage, re.M))
env_in_image = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", "\n".join(re.findall(r"^ENV[\s\S]*?(?:\n(?!\s)|\Z)", run_stage, re.M))))
names_known("Containerfile ENV", env_in_image)

# 6. The systemd units.
hardening = ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
             "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes", "ProtectControlGroups=yes",
             "RestrictNamespaces=yes", "RestrictRealtime=yes", "LockPersonality=yes", "MemoryDenyWriteExecute=yes",
             "CapabilityBoundingSet=", "AmbientCapabilities=", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
             "SystemCallFilter=@system-service", "SystemCallArchitectures=native", "UMask=0077"]
deployment_md = read("docs/deployment.md")
for unit, subcommand, exposure in (("sms-reseller.service", "serve", os.environ.get("SERVICE_EXPOSURE", "")),
                                   ("sms-reseller-migrate.service", "migrate", os.environ.get("MIGRATE_EXPOSURE", ""))):
    text = read(f"deploy/systemd/{unit}")
    lines = set(text.splitlines())
    missing = [h for h in hardening if h not in lines]
    check(f"{unit}: hardened ({len(hardening)} settings)", not missing, ", ".join(missing))
    check(f"{unit}: ExecStart=/usr/bin/sms-reseller {subcommand}, EnvironmentFile=/etc/sms-reseller/env, User=sms-reseller",
          f"ExecStart=/usr/bin/sms-reseller {subcommand}" in lines and "EnvironmentFile=/etc/sms-reseller/env" in lines
          and "User=sms-reseller" in lines)
    writable = [l for l in lines if l.startswith("ReadWritePaths=")]
    check(f"{unit}: no ReadWritePaths (it writes nothing to disk)", not writable, str(writable))
    if exposure:
        check(f"{unit}: docs/deployment.md quotes its exposure {exposure}",
              re.search(rf"`{re.escape(unit)}`[^\n]*\b{re.escape(exposure)}\b", deployment_md) is not None)
    else:
        print(f"  --    {unit}: systemd-analyze security --offline=yes is not available here; exposure not compared")
service_unit = set(read("deploy/systemd/sms-reseller.service").splitlines())
check("sms-reseller.service requires sms-reseller-migrate.service and starts after it",
      "Requires=sms-reseller-migrate.service" in service_unit
      and any(l.startswith("After=") and "sms-reseller-migrate.service" in l for l in service_unit))
check("sms-reseller-migrate.service is a one-shot", "Type=oneshot" in read("deploy/systemd/sms-reseller-migrate.service").splitlines())
check("the old deploy/sms-reseller.service is gone", not os.path.exists("deploy/sms-reseller.service"))
stale = [p for p in glob.glob("**/*.md", recursive=True) + glob.glob("scripts/*.sh")
         if ".build" not in p and "deploy/sms-reseller.service" in read(p) and not p.endswith("deploy-check.sh")]
check("nothing names deploy/sms-reseller.service any more", not stale, ", ".join(stale))

# 7. nginx.
nginx = read("deploy/nginx/sms-reseller.conf")
directives = re.findall(r"^\s*proxy_next_upstream\s+([^;]*);", nginx, re.M)
check("nginx: proxy_next_upstream error timeout, never non_idempotent nor http_5xx",
      "error timeout" in directives and not any("non_idempotent" in d or "http_5" in d for d in directives), str(directives))
check("nginx: the 1601-compatible endpoint (sends on GET) is never passed on",
      re.search(r"location /module/ \{[^}]*proxy_next_upstream off;", nginx) is not None)
check("nginx: the access log names the instance ($upstream_addr)", "$upstream_addr" in nginx)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
