"""W1-W3 in Hamilton with its cache, one whole program: ``hamilton_prog.py WORKLOAD DIR SIZE``.

The driver is built with ``.with_cache(path=DIR/cache)`` (Hamilton's default stores: SQLite
metadata, pickled results in files); a second program over the same DIR is the warm run. W2
uses dynamic execution with the synchronous local executor (in-process, like ductwork's
inline backend). Prints one JSON line: the result and how many nodes (tasks, for W2) were
read from the cache rather than executed.
"""

import json
import os
import sys

from hamilton import driver
from hamilton.execution import executors

if __name__ == "__main__":
    workload, directory, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    builder = driver.Builder().with_cache(path=os.path.join(directory, "cache"))
    if workload == "w1":
        import hamilton_w1_nodes as module

        final = f"s{size:02d}"
        inputs = {"n": 0}
    elif workload == "w2":
        import hamilton_w2 as module

        builder = (builder.enable_dynamic_execution(allow_experimental_mode=True)
                   .with_local_executor(executors.SynchronousLocalTaskExecutor())
                   .with_remote_executor(executors.SynchronousLocalTaskExecutor()))
        final, inputs = "total", {"n": size}
    else:
        import hamilton_w3 as module

        final, inputs = "size_of", {"n": size}
    dr = builder.with_modules(module).build()
    result = dr.execute([final], inputs=inputs)[final]
    logs = dr.cache.logs(run_id=dr.cache.last_run_id, level="info")
    events = [e.event_type.value for evs in logs.values() for e in evs]
    print(json.dumps({"result": result, "cached": events.count("get_result"),
                      "executed": events.count("execute_node")}))
