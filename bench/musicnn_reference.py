"""Our TF-free musicnn embeddings against the original musicnn 0.1.0 running on TensorFlow.

Not part of the test suite. It needs a throwaway venv OUTSIDE the repo with TensorFlow:

    python3 -m venv /work/tfref
    /work/tfref/bin/pip install tensorflow-cpu==2.15.1 'numpy<2' librosa
    /work/tfref/bin/pip install --no-deps musicnn==0.1.0

and the converted models (``recengine.neural.install.install_models``). Then, from the repo:

    .venv/bin/python bench/musicnn_reference.py [--tfref /work/tfref/bin/python] [--corpus /work/corpus]

It writes test audio as 16 kHz float WAV files to a temp dir (three generated tones, one of them
at full scale, and 20 s excerpts of three real corpus tracks decoded with ffmpeg), runs this same
file under the TF venv (``--tf-side``) where musicnn's own ``extractor()`` computes MTT_vgg pool5
and MSD_musicnn penultimate, and compares with ours patch by patch and as track means.

Two traps are handled on the TF side:

- musicnn's extractor wraps ``saver.restore`` in a bare ``except:`` and would silently run on
  random initial weights. ``Saver.restore`` is wrapped to record success or the exception, and
  after the restore one kernel is read back from the session and compared with the checkpoint
  file (``tf.train.load_variable``); the run aborts if either check fails.
- musicnn 0.1.0's extractor runs the patches in batches of ``config.BATCH_SIZE`` (1) and, for
  every batch after the first, appends the *first* batch's ``penultimate`` (and cnn1-3) again: it
  unpacks the new outputs into ``backend_`` but concatenates the stale ``penultimate_``. So its
  MSD_musicnn penultimate is patch 1 repeated. The comparison runs set ``BATCH_SIZE`` to cover
  all patches (one batch, no stale rows; batch norm at inference is per example, so batching does
  not change the values); an unmodified batch-size-1 run shows the bug (column "stale rows").
- musicnn casts the mel spectrogram to float16 before ``log10(10000 * x + 1)``. Under NumPy 1.26
  (the TF venv) ``10000 * float16_array`` is promoted to float32, so nothing overflows, but the
  float16 rounding of the mel moves embeddings by up to 1.1e-3 (column "f16 vs f32"). Under
  NumPy 2 (NEP 50) the product stays float16 and overflows to inf above 6.55 (a full-scale
  110 Hz square wave: 3010 inf cells in 4 s). Our front end is float32 throughout, so the
  comparison run gives the extractor a numpy whose ``float16`` is ``float32`` (the original code
  otherwise unchanged); the unpatched run is reported beside it.

Result (2026-12-01; TF 2.15.1 CPU, librosa 0.11.0, numpy 1.26.4 on the TF side, ours under numpy
2.4.6; 3 generated 10 s signals + 20 s of 3 corpus tracks, 3-6 patches each), exit status 0:

    model        max abs diff per patch   of the track mean   largest |embedding| value
    MTT_vgg      1.0e-05                  8.9e-06             3.4
    MSD_musicnn  5.5e-06                  4.7e-06             5.5
    (tolerance 1e-3; musicnn's own float16 front end differs from its float32 one by <= 1.1e-3,
    its batch-size-1 MSD_musicnn penultimate had every row after the first stale, 2/2 or 5/5)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MODELS = ("MTT_vgg", "MSD_musicnn")
FEATURE = {"MTT_vgg": "pool5", "MSD_musicnn": "penultimate"}
SR = 16000


# --- TF side (runs under the TF venv) --------------------------------------------------------------


def tf_side(wav_dir: Path, out: Path) -> None:
    import types

    import musicnn.extractor as mx
    import tensorflow as tf

    real_np = mx.np
    status: dict = {}
    orig_restore = tf.compat.v1.train.Saver.restore

    def checked_restore(self, sess, save_path):
        try:
            r = orig_restore(self, sess, save_path)
            # read one kernel back from the live session and from the checkpoint files themselves
            # (NewCheckpointReader takes the prefix literally; tf.train.load_variable would treat
            # the directory as a 'checkpoint' state file, which points at the author's old path)
            name = "1CNN/kernel" if "vgg" in save_path else "conv2d/kernel"
            var = [v for v in tf.compat.v1.global_variables() if v.name == name + ":0"][0]
            live = sess.run(var)
            disk = tf.compat.v1.train.NewCheckpointReader(save_path).get_tensor(name)
            status["restored"] = bool(np.array_equal(live, disk)) and float(np.abs(disk).max()) > 0
            status["path"] = save_path
            return r
        except Exception as e:  # recorded, then re-raised into musicnn's bare except
            status["error"] = repr(e)
            raise

    tf.compat.v1.train.Saver.restore = checked_restore
    float32_np = types.SimpleNamespace(**{k: getattr(real_np, k) for k in dir(real_np) if not k.startswith("__")})
    float32_np.float16 = real_np.float32

    results: dict = {}
    for model in MODELS:
        for wav in sorted(wav_dir.glob("*.wav")):
            for variant, npmod, batch in (
                ("float32", float32_np, 1 << 20),
                ("float16", real_np, 1 << 20),
                ("batch1", float32_np, 1),
            ):
                status.clear()
                mx.np = npmod
                mx.config.BATCH_SIZE = batch
                _, _, feats = mx.extractor(str(wav), model=model, extract_features=True)
                mx.np = real_np
                if not status.get("restored"):
                    raise SystemExit(f"checkpoint restore failed or not verified for {model}: {status}")
                f = np.asarray(feats[FEATURE[model]], dtype=np.float64)
                if model.endswith("vgg"):
                    f = f.reshape(-1, 2, f.shape[-1]).mean(axis=1)  # (2 P, 128) -> (P, 128)
                results[f"{model}|{wav.stem}|{variant}"] = f
    np.savez(out, **results)


# --- our side ---------------------------------------------------------------------------------------


def _decode(path: Path, seconds: float) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-t", str(seconds), "-ac", "1", "-ar", str(SR), "-f", "f32le", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32)


def make_inputs(wav_dir: Path, corpus: Path) -> dict[str, np.ndarray]:
    import soundfile as sf

    t = np.arange(int(SR * 10.0)) / SR
    rng = np.random.default_rng(7)
    sig = {
        "tone440": 0.3 * np.sin(2 * np.pi * 440 * t),
        "chirp_noise": 0.2 * np.sin(2 * np.pi * (100 + 300 * t) * t) + 0.05 * rng.standard_normal(t.size),
        "fullscale_square": np.sign(np.sin(2 * np.pi * 110 * t)) * 0.99,
    }
    tracks = sorted(p for p in corpus.glob("*/*") if p.suffix in {".ogg", ".mp3", ".flac", ".wav"})
    for p in [tracks[0], tracks[len(tracks) // 2], tracks[-1]] if tracks else []:
        try:
            y = _decode(p, 20.0)
        except subprocess.CalledProcessError:
            continue
        sig[f"track_{p.parent.name}_{p.stem}"[:40]] = y
    out = {}
    for name, y in sig.items():
        y = np.asarray(y, dtype=np.float32)
        sf.write(wav_dir / f"{name}.wav", y, SR, subtype="FLOAT")
        out[name] = y
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tfref", default="/work/tfref/bin/python")
    ap.add_argument("--corpus", default="/work/corpus")
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--tf-side", nargs=2, metavar=("WAV_DIR", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tf_side:
        tf_side(Path(args.tf_side[0]), Path(args.tf_side[1]))
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from recengine.neural import install, musicnn

    models_dir = Path(args.models_dir) if args.models_dir else install.default_models_dir()
    with tempfile.TemporaryDirectory() as tmp:
        wav_dir = Path(tmp)
        inputs = make_inputs(wav_dir, Path(args.corpus))
        ref_path = wav_dir / "ref.npz"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        subprocess.run([args.tfref, __file__, "--tf-side", str(wav_dir), str(ref_path)], check=True, env=env)
        ref = dict(np.load(ref_path))

    summary = {}
    print(
        f"{'model':12} {'input':40} {'P':>3} {'patch maxdiff':>13} {'mean maxdiff':>12} {'|emb| max':>9}"
        f" {'f16 nonfinite':>13} {'f16 vs f32':>10} {'stale rows':>10}"
    )
    for model in MODELS:
        net = musicnn.build(model, install.load_model(model, models_dir))
        worst = 0.0
        for name, y in inputs.items():
            ours = musicnn.track_patch_embeddings(net, y).astype(np.float64)
            theirs = ref[f"{model}|{name}|float32"]
            f16 = ref[f"{model}|{name}|float16"]
            b1 = ref[f"{model}|{name}|batch1"]
            stale = int(sum(np.array_equal(b1[i], b1[0]) for i in range(1, len(b1))))
            d16 = float(np.abs(np.nan_to_num(f16, posinf=1e9) - theirs).max())
            if ours.shape != theirs.shape:
                raise SystemExit(f"{model} {name}: shape {ours.shape} vs reference {theirs.shape}")
            d = float(np.abs(ours - theirs).max())
            dm = float(np.abs(ours.mean(0) - theirs.mean(0)).max())
            bad16 = int((~np.isfinite(f16)).any(axis=1).sum())
            worst = max(worst, d)
            print(
                f"{model:12} {name:40} {len(ours):3d} {d:13.2e} {dm:12.2e} {np.abs(theirs).max():9.3f}"
                f" {bad16:>11d}/{len(f16)} {d16:10.2e} {stale:>8d}/{len(b1) - 1}"
            )
        summary[model] = worst
    print(json.dumps({"max_abs_diff": summary, "tolerance": 1e-3}))
    return 0 if all(v <= 1e-3 for v in summary.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
