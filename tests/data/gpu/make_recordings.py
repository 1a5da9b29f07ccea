"""Regenerate the replay recordings in this folder (and the healthy one shipped in cep_core/gpu/recordings).

Values are modelled on an 8x H100 SXM host under a LoRA training job (driver 550.54.15): deterministic,
so tests can assert on them. Run: .venv/bin/python tests/data/gpu/make_recordings.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
PACKAGE = Path(__file__).parents[3] / "cep_core" / "gpu" / "recordings"
GIB = 1024**3
BUSES = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]
SYSTEM = {"driver_version": "550.54.15", "nvml_version": "12.550.54.15", "cuda_driver_version": 12040}


def device(i: int, step: int) -> dict:
    busy = i < 4  # a 4-GPU training job on GPUs 0-3, the rest idle
    return {
        "index": i,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": f"GPU-6f1c2a4{i}-3b7d-4c1e-9a2f-0d8e5b7c1{i:03d}",
        "pci_bus_id": f"00000000:{BUSES[i].upper()}:00.0",
        "util_gpu": (92 + (step + i) % 7) if busy else 0,
        "util_mem": (41 + (step * 3 + i) % 9) if busy else 0,
        "mem_used": (61 * GIB + (step * 37 + i) * 2**20) if busy else 5 * 2**20,
        "mem_total": 81559 * 2**20,
        "temperature": (63 + (step + i) % 4) if busy else 31 + i % 3,
        "temp_slowdown": 87,
        "power_mw": (598000 + 4000 * ((step + i) % 5)) if busy else 71000 + 1000 * i,
        "power_limit_mw": 700000,
        "fan": "n/a",
        "sm_clock": 1980 if busy else 345,
        "mem_clock": 2619,
        "pstate": 0,
        "throttle_mask": 0 if busy else 0x1,
        "ecc_uncorrected": 0,
        "retired_sbe": "n/a",
        "retired_dbe": "n/a",
        "retired_pending": "n/a",
        "remapped_rows": [0, 0, 0, 0],
        "pcie_gen": 5,
        "pcie_width": 16,
        "pcie_max_gen": 5,
        "pcie_max_width": 16,
        "processes": (
            [
                {
                    "pid": 41230 + i,
                    "used_memory": 61 * GIB,
                    "user": "ml",
                    "command": f"python -m cep_core.training --config run.toml --local-rank {i}",
                }
            ]
            if busy
            else []
        ),
        "error": None,
    }


def healthy(n_snapshots: int = 5) -> dict:
    return {
        "format": "cep-gpu-replay/1",
        "description": "Healthy 8x H100 host: a 4-GPU LoRA job on GPUs 0-3, GPUs 4-7 idle.",
        "system": SYSTEM,
        "init_error": None,
        "snapshots": [{"devices": [device(i, s) for i in range(8)]} for s in range(n_snapshots)],
        "kernel_log": [],
        "nvml_xid_events": [],
    }


def hot() -> dict:
    rec = healthy(3)
    rec["description"] = (
        "Hot 8x H100 host: GPU 2 at 85 C, 2 C under its slowdown threshold, clocks "
        "thermally throttled; GPU 1 held at its power cap."
    )
    for snap in rec["snapshots"]:
        g2 = snap["devices"][2]
        g2.update(temperature=85, throttle_mask=0x20 | 0x40, sm_clock=1410)
        g1 = snap["devices"][1]
        g1.update(power_mw=699000, throttle_mask=0x4, sm_clock=1755)
    return rec


def fallen_off_bus() -> dict:
    rec = healthy(6)
    rec["description"] = (
        "8x H100 host whose GPU 3 (PCI 0000:5d:00) falls off the bus at snapshot 3 "
        "during a training job (Xid 79), as in the project's history."
    )
    for s in range(3, 6):
        snap = rec["snapshots"][s]
        snap["devices"][3] = {"index": 3, "error": "gpu_lost"}
    rec["kernel_log"] = [
        {
            "snapshot": 3,
            "line": "[ 5107.644336] NVRM: GPU at PCI:0000:5d:00: GPU-6f1c2a43-3b7d-4c1e-9a2f-0d8e5b7c1003",
        },
        {
            "snapshot": 3,
            "line": "[ 5107.644339] NVRM: Xid (PCI:0000:5d:00): 79, pid='<unknown>', name=<unknown>, "
            "GPU has fallen off the bus.",
        },
        {"snapshot": 3, "line": "[ 5107.644410] NVRM: GPU 0000:5d:00.0: GPU has fallen off the bus."},
    ]
    rec["nvml_xid_events"] = [{"snapshot": 3, "index": 3, "xid": 79}]
    return rec


def no_driver() -> dict:
    rec = healthy(1)
    rec["description"] = "A host without the NVIDIA driver: nvmlInit fails with LibraryNotFound."
    rec["init_error"] = "library_not_found"
    return rec


def write(path: Path, rec: dict) -> None:
    path.write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(HERE / "healthy-8x-h100.json", healthy())
    write(PACKAGE / "healthy-8x-h100.json", healthy())
    write(HERE / "hot-8x-h100.json", hot())
    write(HERE / "fallen-off-bus-8x-h100.json", fallen_off_bus())
    write(HERE / "no-driver.json", no_driver())
