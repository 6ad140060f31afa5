"""A Ray worker node for tests: joins the head at --address as a raylet of its own on 127.0.0.1 and
blocks until SIGTERM, then stops its processes. Used instead of `ray start --address`, which
rewrites 127.0.0.1 to the machine's network address and so cannot join a loopback-only head.

    python -m tests.harness.ray_node --address 127.0.0.1:PORT --num-gpus 1 --resources '{"node_a": 1}'
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import ray._private.node
import ray._private.parameter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--num-cpus", type=int, default=1)
    parser.add_argument("--num-gpus", type=int, default=1)
    parser.add_argument("--resources", default="{}")
    args = parser.parse_args()
    params = ray._private.parameter.RayParams(
        gcs_address=args.address,
        node_ip_address="127.0.0.1",
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        resources=json.loads(args.resources),
        object_store_memory=100 * 2**20,
        min_worker_port=0,
        max_worker_port=0,
        node_manager_port=0,
        include_log_monitor=False,  # the head's log monitor reads this machine's session logs
    )
    params.dashboard_agent_listen_port = None  # any free port: several nodes share this machine
    node = ray._private.node.Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False)
    print(f"joined {args.address} as node {node.node_id}", flush=True)

    def stop(_signum, _frame):
        node.kill_all_processes(check_alive=False, allow_graceful=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        time.sleep(1.0)


if __name__ == "__main__":
    main()
