#!/usr/bin/env python3
"""Checks the cluster manifests against the executables they run.

Reads every YAML file in cluster/k8s and the command lines of cluster/slurm/train.sbatch,
collects the options they give scvae-coordinator and scvae-worker, and checks that
- every Kubernetes object is valid against the Kubernetes API schema of --kubernetes-version
  (strict: a misspelled or misplaced field is an error), with the kubernetes-validate package;
- every option exists in the `--help` of the executable (found in --bin DIR);
- a coordinator container exposes the port its --listen names, and its probes check that port;
- every Service selects the labels of some pod template, and its targetPort is a port that pod declares;
- a worker's --coordinator names a Service that exists, on that Service's port;
- the coordinator's --workers is the worker workload's replica count (a StatefulSet's replicas,
  an Indexed Job's completions and parallelism).

A setting a container takes from its environment counts as the option it stands for (the
executables read them when the flag is absent): scvae-coordinator's --workers from WORLD_SIZE,
--listen from SCVAE_LISTEN (else tcp://0.0.0.0:$MASTER_PORT); scvae-worker's --coordinator from
SCVAE_COORDINATOR (else tcp://$MASTER_ADDR:$MASTER_PORT). A flag in the command line wins.

  python3 cluster/check_manifests.py --bin .build/release [--allow-missing=--flag,--other] [--require-schema]

--allow-missing lists options that may be absent from --help for now (flags being added on
another branch). Exits 0 when everything holds, 1 with one line per problem otherwise, and 0
with a "skipped:" line when PyYAML is not installed. Without kubernetes-validate the schema
check is skipped with a line that says so, or is a problem with --require-schema.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

EXECUTABLES = ("scvae-coordinator", "scvae-worker")
CLUSTER = os.path.dirname(os.path.abspath(__file__))
# The oldest Kubernetes the manifests are written for: Job success policies are generally
# available from 1.33 on.
KUBERNETES_VERSION = "1.33"


def help_options(bin_dir, executable):
    """The long options an executable's --help lists."""
    path = os.path.join(bin_dir, executable)
    if not os.access(path, os.X_OK):
        raise SystemExit(f"check_manifests: {path} is not an executable (build it first)")
    result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SystemExit(f"check_manifests: {path} --help exited {result.returncode}: {result.stderr.strip()}")
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", result.stdout))


def options_in(tokens):
    """(option, value or None) for each --option in a list of argument tokens."""
    found = []
    for index, token in enumerate(tokens):
        if not token.startswith("--") or len(token) == 2:
            continue
        name, equals, value = token.partition("=")
        if not equals:
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            value = following if following is not None and not following.startswith("--") else None
        found.append((name, value))
    return found


def executable_of(token):
    base = os.path.basename(token.strip("\"'"))
    return base if base in EXECUTABLES else None


# Kubernetes

def containers_of(document):
    """(pod labels, pod spec, container) for every container of a workload's pod template."""
    kind = document.get("kind")
    spec = document.get("spec") or {}
    if kind == "Pod":
        template = {"metadata": document.get("metadata") or {}, "spec": spec}
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        template = spec.get("template") or {}
    elif kind == "Job":
        template = spec.get("template") or {}
    else:
        return []
    labels = (template.get("metadata") or {}).get("labels") or {}
    pod = template.get("spec") or {}
    return [(labels, pod, container) for container in pod.get("containers") or []]


def environment_of(container):
    """The container's environment variables that have a literal value."""
    return {e.get("name"): str(e["value"]) for e in container.get("env") or [] if "value" in e}


def settings_of(executable, options, environment):
    """The options a container's command line gives, with the ones the executable takes from
    its environment when the flag is absent (the flag wins)."""
    settings = dict(options)
    def fallback(name, value):
        if name not in settings and value is not None:
            settings[name] = value
    if executable == "scvae-coordinator":
        fallback("--workers", environment.get("WORLD_SIZE"))
        port = environment.get("MASTER_PORT")
        fallback("--listen", environment.get("SCVAE_LISTEN") or (f"tcp://0.0.0.0:{port}" if port else None))
    if executable == "scvae-worker":
        host, port = environment.get("MASTER_ADDR"), environment.get("MASTER_PORT")
        fallback("--coordinator", environment.get("SCVAE_COORDINATOR") or (f"tcp://{host}:{port}" if host and port else None))
    return settings


def check_schema(documents, version, require, problems):
    """Every object against the Kubernetes API schema of `version`, strictly (unknown fields are errors)."""
    try:
        import kubernetes_validate
    except ImportError:
        if require:
            problems.append("kubernetes-validate is not installed: no schema check (pip install kubernetes-validate)")
        else:
            print("schema check skipped: kubernetes-validate is not installed (pip install kubernetes-validate)")
        return
    for path, document in documents:
        what = f"{document.get('kind')} {(document.get('metadata') or {}).get('name')}"
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            field = ".".join(str(p) for p in error.path) or "(top level)"
            problems.append(f"{path}: {what} is not a valid Kubernetes {error.version} object: {field}: {error.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
            problems.append(f"{path}: {what}: no schema to check it against: {error.message}")
    print(f"schema: {len(documents)} object(s) checked against Kubernetes {version} with kubernetes-validate")


def check_kubernetes(folder, usages, problems, version=KUBERNETES_VERSION, require_schema=False):
    import yaml  # checked by main

    documents = []
    for name in sorted(os.listdir(folder)):
        if name.endswith((".yaml", ".yml")):
            path = os.path.join(folder, name)
            with open(path) as handle:
                try:
                    loaded = [d for d in yaml.safe_load_all(handle) if d]
                except yaml.YAMLError as error:
                    problems.append(f"{path}: not valid YAML: {error}")
                    continue
            documents += [(path, d) for d in loaded]
    if not documents:
        problems.append(f"{folder}: no YAML manifests")
    check_schema(documents, version, require_schema, problems)
    services = {d["metadata"]["name"]: (path, d) for path, d in documents if d.get("kind") == "Service"}
    pods = []
    for path, document in documents:
        for labels, pod, container in containers_of(document):
            pods.append((labels, container))
            tokens = [str(t) for t in (container.get("command") or []) + (container.get("args") or [])]
            executable = next((executable_of(t) for t in tokens if executable_of(t)), None)
            if executable is None:
                continue
            where = f"{path}: container {container.get('name')}"
            options = options_in(tokens)
            usages.append((where, executable, options))
            ports = {p.get("containerPort") for p in container.get("ports") or []}
            settings = settings_of(executable, options, environment_of(container))
            if executable == "scvae-coordinator" and "--listen" in settings:
                value = settings["--listen"]
                port = endpoint_port(value)
                if port is None:
                    problems.append(f"{where}: --listen {value} names no TCP port")
                elif port not in ports:
                    problems.append(f"{where}: --listen port {port} is not among its containerPorts {sorted(ports)}")
                else:
                    check_probes(where, container, port, problems)
            if executable == "scvae-worker" and "--coordinator" in settings:
                check_coordinator_address(where, settings["--coordinator"], services, problems)
    for name, (path, service) in services.items():
        check_service(path, name, service, pods, problems)
    check_worker_count(documents, problems)


def check_probes(where, container, port, problems):
    """A probe of the coordinator checks its control port: a tcpSocket probe names it (by number
    or by the name of a containerPort), an exec probe that reads /proc/net/tcp names it in hex."""
    names = {p.get("name"): p.get("containerPort") for p in container.get("ports") or [] if p.get("name")}
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container.get(kind)
        if not probe:
            continue
        if "tcpSocket" in probe:
            target = probe["tcpSocket"].get("port")
            if names.get(target, target) != port:
                problems.append(f"{where}: {kind} checks port {target}, not the --listen port {port}")
        command = [str(t) for t in (probe.get("exec") or {}).get("command") or []]
        if any(t.startswith("/proc/net/tcp") for t in command):
            # The pattern's local address ends with the port: ":15B3 " is port 5555.
            local_ports = [int(m.group(1), 16) for t in command for m in [re.match(r":([0-9A-Fa-f]{4}) ", t)] if m]
            if local_ports != [port]:
                problems.append(f"{where}: {kind} looks for port(s) {local_ports} in /proc/net/tcp, "
                                f"not the --listen port {port} (:{port:04X})")


def worker_counts(document):
    """(field, count) of the pods a worker workload runs at once and in all."""
    spec = document.get("spec") or {}
    if document.get("kind") == "Job":
        return [("completions", spec.get("completions", 1)), ("parallelism", spec.get("parallelism", 1))]
    return [("replicas", spec.get("replicas", 1))]


def check_worker_count(documents, problems):
    """The coordinator's --workers (or WORLD_SIZE) is the number of workers it waits for."""
    wanted, workloads = [], []
    for path, document in documents:
        for _, _, container in containers_of(document):
            tokens = [str(t) for t in (container.get("command") or []) + (container.get("args") or [])]
            executables = {executable_of(t) for t in tokens} - {None}
            if "scvae-coordinator" in executables:
                workers = settings_of("scvae-coordinator", options_in(tokens), environment_of(container)).get("--workers")
                if str(workers).isdigit():
                    wanted.append((path, int(workers)))
            if "scvae-worker" in executables:
                workloads.append((path, document.get("kind"), worker_counts(document)))
    for coordinator_path, count in wanted:
        for path, kind, counts in workloads:
            for field, value in counts:
                if value != count:
                    problems.append(f"{coordinator_path}: --workers {count}, but the {kind} in {path} has {value} {field}")


def endpoint_port(endpoint):
    match = re.fullmatch(r"tcp://[^:/]+:(\d+)", endpoint or "")
    return int(match.group(1)) if match else None


def check_coordinator_address(where, value, services, problems):
    match = re.fullmatch(r"tcp://([^:/]+):(\d+)", value or "")
    if not match:
        problems.append(f"{where}: --coordinator {value} is not tcp://HOST:PORT")
        return
    host, port = match.group(1), int(match.group(2))
    service_name = host.split(".")[0]
    if service_name not in services:
        problems.append(f"{where}: --coordinator host {host} is not a Service of these manifests")
        return
    ports = {p.get("port") for p in (services[service_name][1].get("spec") or {}).get("ports") or []}
    if port not in ports:
        problems.append(f"{where}: --coordinator port {port} is not a port of Service {service_name} {sorted(ports)}")


def check_service(path, name, service, pods, problems):
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector:
        problems.append(f"{path}: Service {name} has no selector")
        return
    selected = [(labels, c) for labels, c in pods if all(labels.get(k) == v for k, v in selector.items())]
    if not selected:
        problems.append(f"{path}: Service {name} selects {selector}, which no pod template carries")
        return
    for port in spec.get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        declared = {p.get("name") for _, c in selected for p in c.get("ports") or []} | \
                   {p.get("containerPort") for _, c in selected for p in c.get("ports") or []}
        if target not in declared:
            problems.append(f"{path}: Service {name} port {port.get('port')} targets {target}, which the selected pods do not declare")


# Slurm

def logical_lines(text):
    """Lines with backslash continuations joined, comments dropped."""
    joined, current = [], ""
    for line in text.splitlines():
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    if current:
        joined.append(current)
    return [l for l in joined if not l.lstrip().startswith("#")]


def shell_tokens(line):
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def check_slurm(path, usages, problems):
    """Options on the lines that run an executable, after its name, and in the arrays
    coordinator_flags / worker_flags (`name=(...)` and `name+=(...)`)."""
    with open(path) as handle:
        lines = logical_lines(handle.read())
    arrays = {"coordinator_flags": "scvae-coordinator", "worker_flags": "scvae-worker"}
    seen = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        match = re.search(r"\b(coordinator_flags|worker_flags)\+?=\(", line)
        if match:
            body = line[match.end():]
            while ")" not in body.split("#")[0] and index + 1 < len(lines):
                index += 1
                body += " " + lines[index]
            body = body.split(")")[0]
            executable = arrays[match.group(1)]
            usages.append((f"{path}: {match.group(1)}", executable, options_in(shell_tokens(body))))
            seen.add(executable)
        else:
            tokens = shell_tokens(line)
            for position, token in enumerate(tokens):
                executable = executable_of(token)
                if executable:
                    usages.append((f"{path}: line running {executable}", executable, options_in(tokens[position + 1:])))
                    seen.add(executable)
                    break
        index += 1
    for executable in EXECUTABLES:
        if executable not in seen:
            problems.append(f"{path}: never runs {executable}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True, help="folder of the built scvae-coordinator and scvae-worker")
    parser.add_argument("--allow-missing", default="", help="comma-separated options that may be missing from --help "
                        "(write --allow-missing=--a,--b, or without dashes: a,b)")
    parser.add_argument("--cluster", default=CLUSTER, help="the cluster/ folder (default: beside this script)")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION,
                        help=f"the Kubernetes API schema to check against (default: {KUBERNETES_VERSION})")
    parser.add_argument("--require-schema", action="store_true",
                        help="a missing kubernetes-validate is a problem, not a skipped check")
    arguments = parser.parse_args()
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("skipped: PyYAML is not installed (pip install pyyaml, or apt-get install python3-yaml)")
        return 0
    allowed_missing = {"--" + f.lstrip("-") for f in arguments.allow_missing.split(",") if f.strip("-")}
    known = {e: help_options(arguments.bin, e) | {"--help"} for e in EXECUTABLES}
    usages, problems = [], []
    check_kubernetes(os.path.join(arguments.cluster, "k8s"), usages, problems,
                     version=arguments.kubernetes_version, require_schema=arguments.require_schema)
    check_slurm(os.path.join(arguments.cluster, "slurm", "train.sbatch"), usages, problems)
    used = {}
    for where, executable, options in usages:
        for name, _ in options:
            used.setdefault(executable, set()).add(name)
            if name not in known[executable] and name not in allowed_missing:
                problems.append(f"{where}: {executable} has no option {name}")
    for executable in EXECUTABLES:
        print(f"{executable} options used: {' '.join(sorted(used.get(executable, [])))}")
    every_known = set().union(*known.values())
    waived = sorted({n for names in used.values() for n in names} & (allowed_missing - every_known))
    if waived:
        print(f"allowed to be missing for now: {' '.join(waived)}")
    for problem in problems:
        print(f"problem: {problem}")
    print(f"{len(problems)} problem(s) in {len(usages)} command line(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
