"""Same-soundtrack similarity of the TF-free musicnn embeddings (MTT_vgg pool5, MSD_musicnn penultimate).

    nice .venv/bin/python bench/neural_similarity.py /work/corpus --jobs 2 --cache /tmp/neural-emb
    .venv/bin/python bench/neural_similarity.py /work/corpus --cache /tmp/neural-emb   # 2nd run: only measures

Layout ``DIR/<label>/<track>``; the label is the soundtrack. Each track is decoded with ffmpeg to
16 kHz mono float (``ffmpeg -v error -i F -ac 1 -ar 16000 -f f32le -``), falling back to the
``soundfile`` package (+ polyphase resampling) for the files ffmpeg refuses. The whole track is
decoded; up to ``--max-patches`` (default 60 = 3 min) non-overlapping 3 s patches, evenly spread
over the whole track, are embedded (what the extractor plugin does by default). Per-patch
embeddings are cached in ``--cache`` (one ``.npz`` per net and track), so track-level variants
are compared without recomputing:

- ``mean``: mean over patches (the plugin's embedding),
- ``mean+std``: mean and per-dimension standard deviation over patches, concatenated, each half
  L2-normalised first so both count equally.

Scores (``bench/simmetrics.py``, cosine distance via ``metric="angular"``, which ranks exactly as
cosine): same-label precision@10 and leave-one-out 1-NN, micro (over tracks) and macro (over
labels), on the whole corpus and on two halves of the labels (names sorted; half A = even
positions, half B = odd), where a half's scores use only its own tracks as queries and
neighbours. ``--json FILE`` writes every number.

Result (2026-12-01, /work/corpus: 265 tracks, 15 soundtracks, 51,535 s decoded; up to 60 patches
per track = 35,718 s analysed; 3 files read by soundfile: hyperrogue/hr-savino-{caribbean,ivory,
ocean}.ogg; 2 jobs under nice on a shared 2-core machine: 17.5 min wall, decode 213 s CPU).
Cosine, same-soundtrack precision@10 and 1-NN, micro / macro:

    net          variant   set    n   P@10 mi  P@10 ma  1NN mi  1NN ma  chance
    MTT_vgg      mean      all   265   0.332    0.282   0.442   0.375   0.086
    MTT_vgg      mean      A     128   0.595    0.476   0.688   0.588   0.174
    MTT_vgg      mean      B     137   0.383    0.376   0.504   0.470   0.169
    MTT_vgg      mean+std  all   265   0.330    0.278   0.464   0.399   0.086
    MTT_vgg      mean+std  A     128   0.577    0.453   0.680   0.589   0.174
    MTT_vgg      mean+std  B     137   0.393    0.387   0.518   0.480   0.169
    MSD_musicnn  mean      all   265   0.343    0.302   0.506   0.459   0.086
    MSD_musicnn  mean      A     128   0.599    0.479   0.750   0.630   0.174
    MSD_musicnn  mean      B     137   0.398    0.381   0.569   0.552   0.169
    MSD_musicnn  mean+std  all   265   0.350    0.302   0.494   0.454   0.086
    MSD_musicnn  mean+std  A     128   0.604    0.485   0.734   0.614   0.174
    MSD_musicnn  mean+std  B     137   0.396    0.385   0.533   0.511   0.169

    half A: colobot, fillets, hyperrogue, openclonk, tecnoballz, wesnoth, wz2100-aftermath, wz2100-original
    half B: drascula, flare, naev, pushover, warmux, widelands, wz2100-legacy

MSD_musicnn (mean) beats MTT_vgg on every number of all three sets, most on 1-NN; mean+std
changes little and not consistently, so the plugin uses the mean. (The cached patch embeddings
came from an earlier, slower revision of the nets; the final code reproduces them within 5e-6.)

Speed (final code, one BLAS thread; on this VM the number drops by up to half when another
process runs on the other vCPU): x realtime on the analysed audio, best of 7 on one 144 s track
(48 patches) with the machine quiet: MSD_musicnn 108 (27.7 ms per 3 s patch), MTT_vgg 152
(19.7 ms); the same and ``--speed 12`` with other engineers' jobs running (load 2-4.5):
MSD_musicnn 57-93, MTT_vgg 86-148. Peak RSS of one process extracting a 14-min track: 226 MB (60 patches),
277 MB (all 282 patches), including the decoded samples.

``--speed N`` instead times the extractor plugin itself in this one process (set
``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` so BLAS uses one core): the first N tracks,
decoded beforehand, each net's ``MusicnnExtractor.extract`` (default ``max_patches``), reporting
x realtime on the analysed audio and on the decoded audio, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from simmetrics import chance_precision, one_nn, precision_at_k  # noqa: E402

NETS = ("MTT_vgg", "MSD_musicnn")
SR = 16000
AUDIO_EXT = {".ogg", ".opus", ".mp3", ".flac", ".wav", ".mod", ".xm", ".s3m", ".it", ".m4a"}


def decode(path: Path) -> tuple[np.ndarray, str]:
    r = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SR), "-f", "f32le", "-"],
        capture_output=True,
    )
    if r.returncode == 0 and len(r.stdout) >= 4:
        return np.frombuffer(r.stdout, dtype=np.float32).copy(), "ffmpeg"
    import soundfile as sf
    from scipy.signal import resample_poly

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if sr != SR:
        g = np.gcd(int(sr), SR)
        y = resample_poly(y, SR // g, int(sr) // g).astype(np.float32)
    return y, "soundfile"


def _cache_path(cache: Path, net: str, corpus: Path, track: Path) -> Path:
    rel = track.relative_to(corpus)
    return cache / net / (str(rel).replace(os.sep, "__") + ".npz")


_NETS: dict = {}


def _work(args) -> dict:
    corpus, track, cache, max_patches, models_dir = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from recengine.neural import install, musicnn

    todo = [n for n in NETS if not _cache_path(cache, n, corpus, track).exists()]
    info = {"track": str(track), "decoded_s": None, "decoder": "cache", "seconds": {}}
    if not todo:
        return info
    t0 = time.perf_counter()
    y, how = decode(track)
    info.update(decoded_s=len(y) / SR, decoder=how, decode_time=time.perf_counter() - t0)
    for n in todo:
        if n not in _NETS:
            _NETS[n] = musicnn.build(n, install.load_model(n, models_dir))
        t = time.perf_counter()
        e = musicnn.track_patch_embeddings(_NETS[n], y, batch=1, max_patches=max_patches)
        info["seconds"][n] = time.perf_counter() - t
        info.setdefault("patches", {})[n] = len(e)
        p = _cache_path(cache, n, corpus, track)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp.npz")
        np.savez(tmp, patches=e, decoded_s=len(y) / SR)
        os.replace(tmp, p)
    return info


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def track_vectors(cache: Path, net: str, corpus: Path, tracks: list[Path], variant: str) -> np.ndarray:
    rows = []
    for t in tracks:
        e = np.load(_cache_path(cache, net, corpus, t))["patches"].astype(np.float64)
        if variant == "mean":
            rows.append(e.mean(axis=0))
        elif variant == "mean+std":
            rows.append(np.concatenate([e.mean(axis=0), e.std(axis=0)]))
        else:
            raise ValueError(variant)
    x = np.asarray(rows)
    if variant == "mean+std":
        d = x.shape[1] // 2
        x = np.concatenate([_l2(x[:, :d]), _l2(x[:, d:])], axis=1)
    return x


def scores(x: np.ndarray, labels: np.ndarray) -> dict:
    p = precision_at_k(x, labels, k=10, metric="angular")
    o = one_nn(x, labels, metric="angular")
    c = chance_precision(labels)
    return {
        "p@10_micro": p["micro"],
        "p@10_macro": p["macro"],
        "1nn_micro": o["micro"],
        "1nn_macro": o["macro"],
        "chance_micro": c["micro"],
        "n": len(labels),
    }


def speed(tracks: list[Path], models_dir) -> int:
    import resource

    from recengine.default_plugins.musicnn_extractor import MusicnnExtractor
    from recengine.neural import musicnn

    audio = [decode(t)[0] for t in tracks]
    decoded = sum(len(y) for y in audio) / SR
    out = {"tracks": len(tracks), "decoded_s": decoded, "threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    for n in NETS:
        ex = MusicnnExtractor(model=n, models_dir=models_dir)
        ex.setup()
        ex.extract(audio[0][: SR * 4], SR)  # warm up
        analysed = sum(len(musicnn.patches(np.zeros((1 + len(y) // 256, 1)), max_patches=ex.max_patches)) for y in audio)
        analysed *= musicnn.PATCH_SECONDS
        t0 = time.perf_counter()
        for y in audio:
            ex.extract(y, SR)
        dt = time.perf_counter() - t0
        out[n] = {"cpu_s": dt, "analysed_s": analysed, "x_realtime_analysed": analysed / dt, "x_realtime_decoded": decoded / dt}
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/neural-emb"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--max-patches", type=int, default=60)
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--speed", type=int, default=0, metavar="N")
    args = ap.parse_args()

    corpus = args.corpus.resolve()
    tracks = sorted(p for p in corpus.glob("*/*") if p.is_file() and p.suffix.lower() in AUDIO_EXT)
    labels = np.array([t.relative_to(corpus).parts[0] for t in tracks])
    print(f"{len(tracks)} tracks, {len(set(labels))} labels")
    if args.speed:
        return speed(tracks[:: max(1, len(tracks) // args.speed)][: args.speed], args.models_dir)

    t0 = time.perf_counter()
    jobs = [(corpus, t, args.cache, args.max_patches, args.models_dir) for t in tracks]
    infos = []
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            infos = list(ex.map(_work, jobs, chunksize=1))
    else:
        infos = [_work(j) for j in jobs]
    wall = time.perf_counter() - t0
    fresh = [i for i in infos if i["decoder"] != "cache"]
    timing = {}
    if fresh:
        decoded = sum(i["decoded_s"] for i in fresh)
        timing = {
            "tracks_computed": len(fresh),
            "decoded_audio_s": decoded,
            "soundfile_fallback": [i["track"] for i in fresh if i["decoder"] == "soundfile"],
            "decode_cpu_s": sum(i["decode_time"] for i in fresh),
            "wall_s": wall,
            "jobs": args.jobs,
        }
        for n in NETS:
            secs = sum(i["seconds"].get(n, 0.0) for i in fresh)
            patches = sum(i.get("patches", {}).get(n, 0) for i in fresh)
            analysed = patches * 187 * 256 / SR
            timing[n] = {"cpu_s": secs, "patches": patches, "analysed_s": analysed, "x_realtime": analysed / secs}
        print(json.dumps(timing, indent=1))

    names = sorted(set(labels))
    halves = {"all": names, "A": names[0::2], "B": names[1::2]}
    results: dict = {}
    print(f"\n{'net':12} {'variant':9} {'set':4} {'n':>4} {'P@10 mi':>8} {'P@10 ma':>8} {'1NN mi':>7} {'1NN ma':>7} {'chance':>7}")
    for n in NETS:
        for variant in ("mean", "mean+std"):
            x = track_vectors(args.cache, n, corpus, tracks, variant)
            for h, labs in halves.items():
                sel = np.isin(labels, labs)
                s = scores(x[sel], labels[sel])
                results[f"{n}|{variant}|{h}"] = s
                print(
                    f"{n:12} {variant:9} {h:4} {s['n']:4d} {s['p@10_micro']:8.3f} {s['p@10_macro']:8.3f}"
                    f" {s['1nn_micro']:7.3f} {s['1nn_macro']:7.3f} {s['chance_micro']:7.3f}"
                )
    print("half A:", ", ".join(halves["A"]))
    print("half B:", ", ".join(halves["B"]))
    if args.json:
        args.json.write_text(json.dumps({"timing": timing, "scores": results, "halves": halves}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
