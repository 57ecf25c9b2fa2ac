"""Research harness for recengine's built-in features: same-label similarity on a labelled corpus.

Layout: ``CORPUS/<label>/<track>``. Each track is decoded the way the engine decodes it (ffmpeg,
input-side ``-ss`` seeking, N windows of W seconds centred at (i + 0.5) / N of the duration, the
whole file when it is shorter than N * W, mono float32 at 22050 Hz, concatenated), cached as .npy
under /tmp/simcache, run through the built-in extractors, assembled by ``recengine.index.vectors`` and
scored with ``bench.simmetrics`` (P@10 and leave-one-out 1-NN, micro and macro, plus chance).

Files ffmpeg's demuxer refuses are decoded with libsndfile (the ``soundfile`` package), as the
engine's fallback decoder does, then downmixed and resampled with scipy.

    .venv/bin/python bench/similarity_research.py /work/corpus
    .venv/bin/python bench/similarity_research.py /work/corpus --windows 4 --window-s 20
    .venv/bin/python bench/similarity_research.py /work/corpus --ablate   # per-block table
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from simmetrics import evaluate  # noqa: E402

SR = 22050
CACHE = Path(os.environ.get("SIMCACHE", "/tmp/simcache"))
AUDIO_EXT = {".ogg", ".opus", ".mp3", ".flac", ".wav", ".m4a", ".oga"}


# --- decoding (mirrors the engine's decoder) ---------------------------------------------------


def probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
    )
    try:
        return float(out.stdout.strip())
    except ValueError:
        import soundfile as sf

        return float(sf.info(str(path)).duration)


def plan_windows(duration: float, n: int, w: float) -> list[tuple[float, float]]:
    """(start, length) in seconds of each analysis window; the whole file when it is short."""
    if duration <= n * w:
        return [(0.0, duration)]
    out = []
    for i in range(n):
        centre = (i + 0.5) / n * duration
        start = min(max(centre - w / 2.0, 0.0), duration - w)
        out.append((start, w))
    return out


def _ffmpeg_window(path: Path, start: float, length: float, sr: int) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-v", "error"]
    if start > 0:
        cmd += ["-ss", f"{start:.3f}"]
    cmd += ["-t", f"{length:.3f}", "-i", str(path), "-ac", "1", "-ar", str(sr), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace").strip())
    return np.frombuffer(proc.stdout, dtype="<f4").copy()


def _soundfile_window(path: Path, start: float, length: float, sr: int) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    info = sf.info(str(path))
    a = int(start * info.samplerate)
    b = a + int(length * info.samplerate)
    x, native = sf.read(str(path), start=a, stop=b, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if native != sr:
        g = np.gcd(int(native), sr)
        x = resample_poly(x, sr // g, int(native) // g).astype(np.float32)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def decode(path: Path, n: int, w: float, sr: int = SR) -> tuple[np.ndarray, str]:
    """Engine-style decode of ``path``, cached as .npy. Returns (samples, decoder name)."""
    key = hashlib.sha1(f"{path.resolve()}|{n}|{w}|{sr}".encode()).hexdigest()[:16]
    cached = CACHE / f"{key}.npy"
    meta = CACHE / f"{key}.json"
    if cached.exists() and meta.exists():
        return np.load(cached), json.loads(meta.read_text())["decoder"]
    duration = probe_duration(path)
    windows = plan_windows(duration, n, w)
    decoder = "ffmpeg"
    try:
        parts = [_ffmpeg_window(path, s, ln, sr) for s, ln in windows]
    except RuntimeError:
        decoder = "soundfile"
        parts = [_soundfile_window(path, s, ln, sr) for s, ln in windows]
    x = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npy")
    np.save(tmp, x)
    os.replace(tmp, cached)
    meta.write_text(json.dumps({"path": str(path), "decoder": decoder, "windows": windows}))
    return x, decoder


def list_corpus(root: Path) -> list[tuple[Path, str]]:
    items = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(label_dir.iterdir()):
            if f.suffix.lower() in AUDIO_EXT:
                items.append((f, label_dir.name))
    return items


def _decode_job(args):
    path, n, w = args
    x, dec = decode(path, n, w)
    return len(x), dec


def decode_all(items, n: int, w: float, jobs: int = 2) -> None:
    with ProcessPoolExecutor(jobs) as ex:
        list(ex.map(_decode_job, [(p, n, w) for p, _ in items]))


# --- features --------------------------------------------------------------------------------


def load_extractors():
    from recengine.default_plugins import dynamics, rhythm, spectral, timbre, tonal

    found = []
    for mod in (timbre, spectral, dynamics, rhythm, tonal):
        mod.register_extractors(found.append)
    return found


def featurise(items, n: int, w: float, extractors) -> tuple[list[dict], dict]:
    blocks, times = [], {e.name: 0.0 for e in extractors}
    from recengine.analysis import dsp

    times["dsp_shared"] = 0.0
    for path, _ in items:
        x, _ = decode(path, n, w)
        t0 = time.process_time()
        dsp.analyse(x, SR)  # the shared STFT/mel memo, timed separately
        times["dsp_shared"] += time.process_time() - t0
        b = {}
        for e in extractors:
            t0 = time.process_time()
            v = np.asarray(e.extract(x, SR), dtype=np.float32)
            times[e.name] += time.process_time() - t0
            assert v.shape == (e.dim,) and np.all(np.isfinite(v)), (e.name, path)
            b[e.name] = v
        blocks.append(b)
    return blocks, {k: v / max(len(items), 1) for k, v in times.items()}


def score(blocks, labels, weights: dict, metric: str, k: int = 10) -> dict:
    from recengine.index.vectors import Scaler

    order = [name for name in weights if weights[name] > 0]
    scaler = Scaler.fit(blocks, weights={n: weights[n] for n in order}, order=order)
    vecs = np.stack([scaler.transform(b) for b in blocks])
    return evaluate(vecs, labels, k=k, metric=metric)


def fmt(r: dict) -> str:
    return (
        f"P@10 {r['p@10_micro']:.3f}/{r['p@10_macro']:.3f}  "
        f"1NN {r['1nn_micro']:.3f}/{r['1nn_macro']:.3f}  (micro/macro)"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--window-s", type=float, default=30.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--metric", default=None, help="euclidean or angular (default: recengine.index.vectors.METRIC)")
    ap.add_argument("--ablate", action="store_true", help="also score each block alone and leave-one-out")
    args = ap.parse_args(argv)

    from recengine.index import vectors

    items = list_corpus(args.corpus)
    labels = [lab for _, lab in items]
    t0 = time.time()
    decode_all(items, args.windows, args.window_s, args.jobs)
    print(f"{len(items)} tracks, {len(set(labels))} labels; decode/cache {time.time() - t0:.1f} s")
    extractors = load_extractors()
    blocks, times = featurise(items, args.windows, args.window_s, extractors)
    metric = args.metric or vectors.METRIC
    weights = {e.name: float(getattr(e, "weight", 1.0)) for e in extractors}
    r = score(blocks, labels, weights, metric)
    print(f"chance P@10 {r['chance_micro']:.3f}/{r['chance_macro']:.3f} (micro/macro)")
    print(f"ALL  weights={weights} metric={metric}\n     {fmt(r)}")
    print("     per label P@10:", {k: round(v, 2) for k, v in r["per_label_p"].items()})
    if args.ablate:
        for name in weights:
            alone = score(blocks, labels, {name: 1.0}, metric)
            print(f"only {name:9s} dim {len(blocks[0][name]):3d}  {fmt(alone)}")
        for name in weights:
            w2 = dict(weights)
            w2[name] = 0.0
            print(f"w/o  {name:9s}          {fmt(score(blocks, labels, w2, metric))}")
    total = sum(times.values())
    print(
        "CPU per track (ms): "
        + ", ".join(f"{k} {1000 * v:.1f}" for k, v in times.items())
        + f"; total {1000 * total:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
