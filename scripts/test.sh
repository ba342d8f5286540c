#!/usr/bin/env bash
# The whole test suite on this machine's code paths, then the numeric tests again on the paths a
# CPU without AVX-512 takes (the AMD EPYC, Zen 3), so that every machine, CI's included, runs both.
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

# Without AVX-512 our kernels (Sources/CKernels) do not run: SCVAE_DIRECT_CONV=0 turns them off
# here too (OpenBLAS convolutions and the Swift GroupNorm run instead), and OPENBLAS_CORETYPE
# selects OpenBLAS's AVX2 kernels (the Zen kernels the AMD machine loads gave the same results).
echo "test.sh: numeric tests without AVX-512 (SCVAE_DIRECT_CONV=0 OPENBLAS_CORETYPE=Haswell)"
SCVAE_DIRECT_CONV=0 OPENBLAS_CORETYPE=Haswell swift test -c release --skip-build --filter "$numeric" || status=1

# OpenBLAS's generic SSE3 kernels ("Prescott") are what a test process gets on a CPU this
# OpenBLAS does not recognise (the executables then switch to AVX2 or AVX-512 kernels, the tests
# do not). Their rounding differs again, so the replica tests, which compare world sizes in
# memory, run once more on them (every numeric test would take minutes with these kernels).
echo "test.sh: replica tests on OpenBLAS's generic kernels (SCVAE_DIRECT_CONV=0 OPENBLAS_CORETYPE=Prescott)"
SCVAE_DIRECT_CONV=0 OPENBLAS_CORETYPE=Prescott swift test -c release --skip-build \
  --filter '^WorkerTests\.TrainingReplicaTests/' || status=1

exit $status
