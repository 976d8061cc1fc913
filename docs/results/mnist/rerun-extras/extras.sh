# The first run's other methods on the rerun's repetitions: AE, second order, semi-supervised.
for r in 1 2 3 4 5; do
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=/tmp/snap5/src nice -n 10 \
    .venv-test/bin/python -m steinlatent.experiments.mnist --full \
    --out results-local/mnist-v2-extras --data-dir ../shared/data \
    --h 10 14 18 --reps $r --no-figures \
    --methods pca ae stein2 semi || exit 1
done
echo extras done
