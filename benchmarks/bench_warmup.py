"""Benchmark: 1000 warmup records for a 3-input model, whole process, two ways.

- tfsconf: `python -m tfsconf warmup generate ...` (pure Python, no TensorFlow runtime).
- seed 000's approach: import TensorFlow, build each input with tf.make_tensor_proto,
  write with tf.io.TFRecordWriter.

Both run as fresh subprocesses in the same run, on the same model and samples; each
output is then checked by `tfsconf warmup verify`. Run: python benchmarks/bench_warmup.py
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bytecode import child_env

RECORDS = 1000
REPEATS = 5
TARGET = 20.0  # issue 17: the CLI at least 20x faster than the seed's way

API_STYLE = """
import sys
from pathlib import Path
from tfsconf.warmup import generate_warmup

generate_warmup(Path(sys.argv[1]), Path(sys.argv[2]), records=int(sys.argv[3]),
                model_name="bench", out=Path(sys.argv[4]))
"""

SEED_STYLE = """
import json, sys
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

samples, out, records = sys.argv[1], sys.argv[2], int(sys.argv[3])
dtypes = {"dense": tf.float32, "count": tf.int64, "tags": tf.string}
with open(samples) as handle:
    rows = [json.loads(line) for line in handle]
with tf.io.TFRecordWriter(out) as writer:
    for i in range(records):
        row = rows[i % len(rows)]
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "bench"
        request.model_spec.signature_name = "serving_default"
        request.inputs["dense"].CopyFrom(tf.make_tensor_proto([row["dense"]], dtype=tf.float32))
        request.inputs["count"].CopyFrom(tf.make_tensor_proto([row["count"]], dtype=tf.int64))
        request.inputs["tags"].CopyFrom(tf.make_tensor_proto([[row["tags"]]], dtype=tf.string))
        log = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request))
        writer.write(log.SerializeToString())
"""


def build_model(version_dir: Path) -> None:
    """A 3-input SavedModel (float [None, 4], int64 [None], string [None, 1])."""
    import tensorflow as tf

    class Bench(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = tf.Variable([0.5, -1.0, 2.0, 0.25])

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 4], tf.float32, name="dense"),
                tf.TensorSpec([None], tf.int64, name="count"),
                tf.TensorSpec([None, 1], tf.string, name="tags"),
            ]
        )
        def serve(self, dense: tf.Tensor, count: tf.Tensor, tags: tf.Tensor) -> dict:
            tokens = tf.strings.split(tf.reshape(tags, [-1]), sep=",")
            return {
                "score": tf.linalg.matvec(dense, self.weights)
                + tf.cast(count, tf.float32)
                + tf.cast(tokens.row_lengths(), tf.float32)
            }

    module = Bench()
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})


def write_samples(path: Path) -> None:
    with path.open("w") as handle:
        for i in range(RECORDS):
            row = {
                "dense": [i * 0.001, 1.0, -0.5, 2.0],
                "count": i,
                "tags": ",".join(str(i + k) for k in range(i % 5 + 1)),
            }
            handle.write(json.dumps(row) + "\n")


def same_requests(left: Path, right: Path) -> bool:
    """Equal as messages: map fields may serialize in another order, so bytes may differ."""
    from tfsconf.warmup.protos import tf_protos
    from tfsconf.warmup.tfrecord import read_records

    log = tf_protos().prediction_log.PredictionLog
    return [log.FromString(r) for r in read_records(left)] == [
        log.FromString(r) for r in read_records(right)
    ]


CPU: dict[tuple[str, ...], list[float]] = {}
"""CPU seconds (user + sys) of each command's runs: steadier than wall time when other
work shares the machine."""


def timed(command: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(tuple(command), []).append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    )
    return wall


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-warmup-") as tmp:
        root = Path(tmp)
        # as an installed package runs: bytecode cached (filled by the untimed first run)
        env = {**child_env("cached", root / "pycache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        model = root / "bench" / "1"
        print("building the SavedModel ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, __file__, "--build", str(model)], check=True, env=env,
            capture_output=True,
        )  # fmt: skip
        samples = root / "samples.jsonl"
        write_samples(samples)
        ours_out = root / "ours.tfrecord"
        seed_out = root / "seed.tfrecord"
        ours_cmd = [
            sys.executable, "-m", "tfsconf", "warmup", "generate", "--model-dir", str(model),
            "--samples", str(samples), "--records", str(RECORDS), "--model-name", "bench",
            "--out", str(ours_out),
        ]  # fmt: skip
        api_out = root / "api.tfrecord"
        api_cmd = [
            sys.executable, "-c", API_STYLE, str(model), str(samples), str(RECORDS), str(api_out),
        ]  # fmt: skip
        seed_cmd = [sys.executable, "-c", SEED_STYLE, str(samples), str(seed_out), str(RECORDS)]
        ours: list[float] = []
        api: list[float] = []
        seed: list[float] = []
        for command in (ours_cmd, api_cmd):  # untimed: bytecode and page cache warm
            subprocess.run(command, check=True, env=env, capture_output=True)
        for run in range(REPEATS):
            print(f"run {run + 1}/{REPEATS} ...", file=sys.stderr)
            ours.append(timed(ours_cmd, env))
            api.append(timed(api_cmd, env))
            seed.append(timed(seed_cmd, env))
        for out in (ours_out, seed_out):
            verify = [sys.executable, "-m", "tfsconf", "warmup", "verify", str(model)]
            subprocess.run([*verify, "--file", str(out)], check=True, env=env, capture_output=True)
        same = same_requests(ours_out, seed_out) and same_requests(ours_out, api_out)
    ours_median, seed_median = statistics.median(ours), statistics.median(seed)
    print(f"{RECORDS} warmup records, 3-input model, whole process, {REPEATS} interleaved runs:")
    print(f"  {'':<46} {'best':>8} {'median':>8}")
    for label, times in (
        ("tfsconf warmup generate (CLI)", ours),
        ("tfsconf.warmup.generate_warmup (Python API)", api),
        ("seed approach (TF, make_tensor_proto, writer)", seed),
    ):
        print(f"  {label:<46} {min(times):7.3f}s {statistics.median(times):7.3f}s")
    print(
        f"  speed-up: best {min(seed) / min(ours):.1f}x, median {seed_median / ours_median:.1f}x "
        f"(target >= {TARGET:g}x)"
    )
    ours_cpu, seed_cpu = CPU[tuple(ours_cmd)], CPU[tuple(seed_cmd)]
    print(
        f"  CPU time (user + sys), median: tfsconf {statistics.median(ours_cpu):.3f}s, "
        f"seed {statistics.median(seed_cpu):.3f}s: "
        f"{statistics.median(seed_cpu) / statistics.median(ours_cpu):.1f}x"
    )
    print(
        f"  Python API vs seed: best {min(seed) / min(api):.1f}x, "
        f"median {seed_median / statistics.median(api):.1f}x"
    )
    print(f"  all outputs verify; same PredictionLog messages in both: {same}")
    print(f"  all runs (s): tfsconf {[round(t, 3) for t in ours]}")
    print(f"                api     {[round(t, 3) for t in api]}")
    print(f"                seed    {[round(t, 3) for t in seed]}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        build_model(Path(sys.argv[2]))
    else:
        main()
