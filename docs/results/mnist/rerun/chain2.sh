# Network decoders of repetitions 2-5 (encoders cached by the encoder stage).
for r in 2 3 4 5; do
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=/tmp/snap3/src nice -n 10 \
    .venv-test/bin/python -m steinlatent.experiments.mnist --full \
    --out results-local/mnist-v2 --data-dir ../shared/data \
    --h 10 14 18 --reps $r --no-figures \
    --methods pca pca_mlp stein1 stein1_unet stein1_kde \
    --unet-levels 0.3 1.0 || exit 1
done
echo chain2 done
