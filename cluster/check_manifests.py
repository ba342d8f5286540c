#!/usr/bin/env python3
"""Checks the cluster manifests against the executables they run.

Reads every YAML file in cluster/k8s and the command lines of cluster/slurm/train.sbatch,
collects the options they give scvae-coordinator and scvae-worker, and checks that
- every option exists in the `--help` of the executable (found in --bin DIR);
- a coordinator container exposes the port its --listen names;
- every Service selects the labels of some pod template, and its targetPort is a port that pod declares;
- a worker's --coordinator names a Service that exists, on that Service's port;
- the coordinator's --workers is the worker workload's replica count.

  python3 cluster/check_manifests.py --bin .build/release [--allow-missing=--flag,--other]

--allow-missing lists options that may be absent from --help for now (flags being added on
another branch). Exits 0 when everything holds, 1 with one line per problem otherwise, and 0
with a "skipped:" line when PyYAML is not installed.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

EXECUTABLES = ("scvae-coordinator", "scvae-worker")
CLUSTER = os.path.dirname(os.path.abspath(__file__))


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


def check_kubernetes(folder, usages, problems):
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
            for name, value in options:
                if executable == "scvae-coordinator" and name == "--listen":
                    port = endpoint_port(value)
                    if port is None:
                        problems.append(f"{where}: --listen {value} names no TCP port")
                    elif port not in ports:
                        problems.append(f"{where}: --listen port {port} is not among its containerPorts {sorted(ports)}")
                if executable == "scvae-worker" and name == "--coordinator":
                    check_coordinator_address(where, value, services, problems)
    for name, (path, service) in services.items():
        check_service(path, name, service, pods, problems)
    check_worker_count(documents, problems)


def check_worker_count(documents, problems):
    """The coordinator's --workers is the number of worker replicas it waits for."""
    wanted, replicas = [], []
    for path, document in documents:
        for _, _, container in containers_of(document):
            tokens = [str(t) for t in (container.get("command") or []) + (container.get("args") or [])]
            executables = {executable_of(t) for t in tokens} - {None}
            if "scvae-coordinator" in executables:
                wanted += [(path, int(v)) for n, v in options_in(tokens) if n == "--workers" and str(v).isdigit()]
            if "scvae-worker" in executables:
                replicas.append((path, document.get("kind"), (document.get("spec") or {}).get("replicas", 1)))
    for coordinator_path, count in wanted:
        for path, kind, replica_count in replicas:
            if replica_count != count:
                problems.append(f"{coordinator_path}: --workers {count}, but the {kind} in {path} has {replica_count} replicas")


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
    arguments = parser.parse_args()
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("skipped: PyYAML is not installed (pip install pyyaml, or apt-get install python3-yaml)")
        return 0
    allowed_missing = {"--" + f.lstrip("-") for f in arguments.allow_missing.split(",") if f.strip("-")}
    known = {e: help_options(arguments.bin, e) | {"--help"} for e in EXECUTABLES}
    usages, problems = [], []
    check_kubernetes(os.path.join(arguments.cluster, "k8s"), usages, problems)
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
