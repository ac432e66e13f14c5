"""The collector benchmark's data and baselines (bench/collectors.sh runs it).

    collectors.py generate DIR [--megabytes N]   writes DIR/metrics.txt (Katib-style lines, N MB) and
                                                 DIR/tb/ (the same reports as TensorBoard events, by tensorboardX)
    collectors.py python-text FILE               Python's re with Katib's default filter over FILE: prints reports
    collectors.py python-events DIR              the event files under DIR framed and parsed with tensorboardX's
                                                 protobuf classes (no CRC check): prints reports
"""
import os
import re
import struct
import sys
import time

KATIB_FILTER = re.compile(rb"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)")


def generate(directory, megabytes):
    from tensorboardX import SummaryWriter
    from tensorboardX.proto.summary_pb2 import Summary

    os.makedirs(directory, exist_ok=True)
    limit = megabytes * 1_000_000
    writer = SummaryWriter(os.path.join(directory, "tb"), flush_secs=600, max_queue=100_000)
    file_writer = writer._get_file_writer()
    size = 0
    step = 0
    started = time.monotonic()
    with open(os.path.join(directory, "metrics.txt"), "w") as text:
        while size < limit:
            step += 1
            accuracy = 0.5 + (step % 5000) / 10000
            loss = 1 / (1 + step % 977)
            line = f"Epoch {step}. accuracy={accuracy:.6f} - loss={loss:.6f}\n"
            text.write(line)
            size += len(line)
            # One event per step holding both values, as a trainer's summary of a step does.
            file_writer.add_summary(Summary(value=[Summary.Value(tag="accuracy", simple_value=accuracy),
                                                   Summary.Value(tag="loss", simple_value=loss)]), step)
            if step % 500_000 == 0:
                print(f"  {size / 1e6:.0f} MB, {step} steps, {time.monotonic() - started:.0f} s", file=sys.stderr)
    writer.close()
    print(step * 2)


def python_text(path):
    count = 0
    with open(path, "rb") as f:
        for line in f:
            for match in KATIB_FILTER.finditer(line):
                if match.group(1) in (b"accuracy", b"loss"):
                    count += 1
    print(count)


def python_events(directory):
    from tensorboardX.proto.event_pb2 import Event

    count = 0
    for root, _, files in os.walk(directory):
        for name in files:
            if "tfevents" not in name:
                continue
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            offset = 0
            while offset + 12 <= len(data):
                (length,) = struct.unpack_from("<Q", data, offset)
                event = Event.FromString(data[offset + 12:offset + 12 + length])
                offset += 12 + length + 4
                if event.HasField("summary"):
                    count += sum(1 for value in event.summary.value if value.tag in ("accuracy", "loss"))
    print(count)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "generate":
        megabytes = int(sys.argv[sys.argv.index("--megabytes") + 1]) if "--megabytes" in sys.argv else 100
        generate(sys.argv[2], megabytes)
    elif command == "python-text":
        python_text(sys.argv[2])
    elif command == "python-events":
        python_events(sys.argv[2])
    else:
        sys.exit(__doc__)
