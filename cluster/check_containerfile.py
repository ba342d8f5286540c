#!/usr/bin/env python3
"""Checks the Containerfile against scripts/setup.sh and, given --bin, against the built executables.

No container tool is needed: the files are read, not built. Checks that
- the builder stage runs scripts/setup.sh (the same steps as a machine set up by hand);
- the runtime stage installs the runtime package of every -dev package in setup.sh's
  build_packages, and no other package (RUNTIME_PACKAGE_OF below is the pairing);
- the builder's Swift image and the runtime image name the same Debian release;
- the runtime stage copies scvae, scvae-worker and scvae-coordinator from the builder and ends
  with a USER that is not root;
- with --bin DIR: every shared library the executables there load directly belongs to one of
  those runtime packages or to the base of every Debian image (the Swift runtime is left out:
  the image links it statically).

  python3 cluster/check_containerfile.py [--root REPO] [--bin .build/release]

Exits 0 when everything holds, 1 with one line per problem otherwise.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXECUTABLES = ("scvae", "scvae-worker", "scvae-coordinator")

# Debian bookworm: the package with the shared library each -dev package builds against.
# libopenblas-dev builds against whichever OpenBLAS variant is installed; the image takes the
# pthread one (threads set by --threads / OMP_NUM_THREADS, no OpenMP runtime).
RUNTIME_PACKAGE_OF = {
    "libzmq3-dev": "libzmq5",
    "libopenblas-dev": "libopenblas0-pthread",
    "libturbojpeg0-dev": "libturbojpeg0",
    "libpng-dev": "libpng16-16",
}
# In every Debian image: the C and C++ runtimes.
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
# The Swift runtime and Foundation: the image's executables link them statically
# (--static-swift-stdlib), whatever a local build loads.
SWIFT_RUNTIME = ("libswift", "libFoundation", "lib_Foundation", "libdispatch", "libBlocksRuntime")
DEBIAN_RELEASES = ("buster", "bullseye", "bookworm", "trixie", "forky")


def shell_array(text, name):
    """The words of a bash array assignment `name=(...)`, comments dropped."""
    match = re.search(rf"^{name}=\(([^)]*)\)", text, re.MULTILINE)
    if not match:
        return None
    return shlex.split(match.group(1), comments=True)


def instructions(text):
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    result, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        current = ""
    return result


def stages(steps):
    """[(stage name, base image, [(INSTRUCTION, arguments)])], ARG defaults substituted in FROM."""
    defaults, found = {}, []
    for keyword, arguments in steps:
        if keyword == "ARG" and not found:
            name, _, value = arguments.partition("=")
            defaults[name] = value
        elif keyword == "FROM":
            words = arguments.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults.get(m.group(1) or m.group(2), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(found))
            found.append((name, image, []))
        elif found:
            found[-1][2].append((keyword, arguments))
    return found


def installed_packages(run_arguments):
    """The packages of every `apt-get install` in a RUN."""
    packages = []
    for command in re.split(r"&&|;|\|\|", run_arguments):
        words = shlex.split(command)
        if "apt-get" in words and "install" in words:
            packages += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return packages


def debian_release(image):
    return next((r for r in DEBIAN_RELEASES if r in image), None)


def check_containerfile(root, problems):
    with open(os.path.join(root, "scripts", "setup.sh")) as handle:
        build_packages = shell_array(handle.read(), "build_packages")
    if build_packages is None:
        problems.append("scripts/setup.sh: no build_packages=(...) array")
        return set()
    with open(os.path.join(root, "Containerfile")) as handle:
        found = stages(instructions(handle.read()))
    if len(found) < 2:
        problems.append(f"Containerfile: {len(found)} stage(s); expected a builder and a runtime stage")
        return set()
    (builder, builder_image, builder_steps), (_, runtime_image, runtime_steps) = found[0], found[-1]

    if not any(k == "RUN" and "scripts/setup.sh" in a for k, a in builder_steps):
        problems.append(f"Containerfile: the builder stage {builder} does not run scripts/setup.sh")
    if debian_release(builder_image) is None or debian_release(builder_image) != debian_release(runtime_image):
        problems.append(f"Containerfile: the builder image {builder_image} and the runtime image {runtime_image} "
                        f"are not of the same Debian release")

    wanted = set()
    for package in build_packages:
        if package in RUNTIME_PACKAGE_OF:
            wanted.add(RUNTIME_PACKAGE_OF[package])
        else:
            problems.append(f"scripts/setup.sh installs {package}, which has no runtime package in "
                            f"cluster/check_containerfile.py RUNTIME_PACKAGE_OF: add it there and to the Containerfile")
    installed = [p for k, a in runtime_steps if k == "RUN" for p in installed_packages(a)]
    for package in sorted(wanted - set(installed)):
        problems.append(f"Containerfile: the runtime stage does not install {package}")
    for package in sorted(set(installed) - wanted):
        problems.append(f"Containerfile: the runtime stage installs {package}, the runtime package of nothing in setup.sh's build_packages")

    copied = " ".join(a for k, a in runtime_steps if k == "COPY" and f"--from={builder}" in a)
    builder_text = " ".join(a for k, a in builder_steps if k == "RUN")
    for executable in EXECUTABLES:
        if f".build/release/{executable}" not in builder_text or not copied:
            problems.append(f"Containerfile: {executable} is not copied from the builder stage into the runtime stage")
    users = [a for k, a in runtime_steps if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("Containerfile: the runtime stage does not end with a non-root USER")
    return wanted


def direct_libraries(path):
    """Paths of the shared libraries an executable names itself (NEEDED), as the loader finds them."""
    needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", path], capture_output=True, text=True).stdout)
    listing = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    found = dict(re.findall(r"^\s*(\S+) => (\S+)", listing, re.MULTILINE))
    # The dynamic loader itself is listed by its path alone: /lib64/ld-linux-x86-64.so.2 (0x...).
    found.update({os.path.basename(p): p for p in re.findall(r"^\s*(/\S+) \(", listing, re.MULTILINE)})
    return {name: found.get(name) for name in needed}


def owning_package(path):
    """The Debian package that owns a library file (following links), or None."""
    for candidate in (path, os.path.realpath(path)):
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":")[0].strip()
    return None


def check_libraries(bin_dir, wanted, problems):
    for executable in EXECUTABLES:
        path = os.path.join(bin_dir, executable)
        if not os.access(path, os.X_OK):
            problems.append(f"{path} is not an executable (build it first)")
            continue
        for name, location in sorted(direct_libraries(path).items()):
            if location is None:
                problems.append(f"{executable}: {name} is not found by the loader")
                continue
            if name.startswith(SWIFT_RUNTIME):
                continue
            package = owning_package(location)
            if package is not None and package not in wanted | BASE_PACKAGES:
                problems.append(f"{executable} loads {name} from {package}, which the Containerfile's runtime stage does not install")
        print(f"{executable}: libraries checked against the runtime stage's packages")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=ROOT, help="the repository (default: the one this script is in)")
    parser.add_argument("--bin", help="folder of the built executables, to check the libraries they load")
    arguments = parser.parse_args()
    problems = []
    wanted = check_containerfile(arguments.root, problems)
    if arguments.bin and wanted:
        check_libraries(arguments.bin, wanted, problems)
    for problem in problems:
        print(f"problem: {problem}")
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
