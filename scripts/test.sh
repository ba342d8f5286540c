#!/usr/bin/env bash
# The whole test suite on this machine's code paths, then the numeric tests again on the paths a
# CPU without AVX-512 takes (the AMD EPYC, Zen 3: our kernels' AVX2 variant) and on the fallback
# of a CPU without AVX2, so that every machine, CI's included, runs them all (where it can).
# Run scripts/setup.sh first. Every part runs; the exit status is non-zero if any part failed.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

swift test -c release || status=1

# The model's tests, and the worker's tests of replicas, reduction and N-invariance (in memory,
# and with real worker processes, which inherit the environment).
numeric='^ModelTests\.'
numeric+='|^WorkerTests\.(TrainingReplicaTests|ExactReductionTests|OverlapTests|StateAgreementTests|WeightsAndGradientsTests|ReconstructionTests)/'
numeric+='|^WorkerTests\.ProcessTests/(theSameGlobalBatchGivesTheSameModelWithOneTwoAndFourWorkers|theSameWorldAndSeedTwiceGiveBitIdenticalWeights|exactReductionIsBitIdenticalForOneToFourWorkersWhateverTheirThreads)\('

# On an AVX2 CPU without AVX-512 (Zen 3) our kernels (Sources/CKernels) run their AVX2+FMA
# variant: SCVAE_KERNELS=avx2 forces it here, and OPENBLAS_CORETYPE selects OpenBLAS's AVX2
# kernels (the Zen kernels the AMD machine loads gave the same results). The AVX2 and AVX-512
# variants give the same bits (the kernel tests check it), so what this run adds is their sum
# with OpenBLAS's AVX2 rounding. Skipped on a CPU without AVX2 and FMA, which cannot run it.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  echo "test.sh: numeric tests on the AVX2 variant (SCVAE_KERNELS=avx2 OPENBLAS_CORETYPE=Haswell)"
  SCVAE_KERNELS=avx2 OPENBLAS_CORETYPE=Haswell swift test -c release --skip-build --filter "$numeric" || status=1
else
  echo "test.sh: no AVX2 and FMA on this CPU: the AVX2 variant's numeric tests are skipped"
fi

# Without AVX2 our kernels do not run at all: SCVAE_DIRECT_CONV=0 (or SCVAE_KERNELS=fallback)
# turns them off here too, and OpenBLAS convolutions and the Swift GroupNorm run instead.
echo "test.sh: numeric tests on the fallback (SCVAE_DIRECT_CONV=0 OPENBLAS_CORETYPE=Haswell)"
SCVAE_DIRECT_CONV=0 OPENBLAS_CORETYPE=Haswell swift test -c release --skip-build --filter "$numeric" || status=1

# OpenBLAS's generic SSE3 kernels ("Prescott") are what a test process gets on a CPU this
# OpenBLAS does not recognise (the executables then switch to AVX2 or AVX-512 kernels, the tests
# do not). Their rounding differs again, so the replica tests, which compare world sizes in
# memory, run once more on them (every numeric test would take minutes with these kernels).
echo "test.sh: replica tests on OpenBLAS's generic kernels (SCVAE_DIRECT_CONV=0 OPENBLAS_CORETYPE=Prescott)"
SCVAE_DIRECT_CONV=0 OPENBLAS_CORETYPE=Prescott swift test -c release --skip-build \
  --filter '^WorkerTests\.TrainingReplicaTests/' || status=1

exit $status
