"""The replicated state: ``coord.work``, ``coord.jobs``, ``coord.locks``, ``coord.kv``.

Every method exists twice: ``work.add(...)`` blocks (the GIL is released while it waits) and
``await work.add_async(...)`` is a real awaitable that never blocks the event loop. Both accept
``timeout=`` (seconds, default 5) and writes accept ``request_id=`` (an idempotency key: a retry
with the same key is applied once). "Not found" is ``None`` / ``False``, as the orchestrator
expects; refusals raise ``InvalidArgumentError`` or ``BackpressureError``; ``UnavailableError``
means not applied (retry), ``TimeoutError`` means the outcome is unknown.

Each operation is described once (the JSON op sent to the engine and how to read its answer);
the sync and async methods are generated from that description.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .ids import new_work_id

__all__ = ["WorkQueue", "Jobs", "Locks", "KV"]

Parser = Callable[[Any], Any]
OpSpec = Tuple[Dict[str, Any], Parser]


def _write(command: Dict[str, Any], parse: Parser, request_id: Optional[str] = None) -> OpSpec:
    op: Dict[str, Any] = {"write": {"command": command}}
    if request_id is not None:
        op["write"]["request_id"] = str(request_id)
    return op, parse


def _read(query: Dict[str, Any], parse: Parser = lambda v: v, stale_ok: bool = False) -> OpSpec:
    return {"read": {"query": query, "stale_ok": bool(stale_ok)}}, parse


def _bool(result: Any) -> bool:
    return bool(result.get("bool")) if isinstance(result, dict) else False


def _work_id(result: Any) -> str:
    return str(result["work_id"])


def _item(result: Any) -> Optional[Dict[str, Any]]:
    return result.get("item") if isinstance(result, dict) else None


def _ids(key: str) -> Parser:
    return lambda result: list(result.get(key, [])) if isinstance(result, dict) else []


def _token(result: Any) -> Optional[int]:
    token = result.get("token") if isinstance(result, dict) else None
    return None if token is None else int(token)


def _operations(cls: type) -> type:
    """Turns every ``_op_<name>`` description into ``<name>`` and ``<name>_async`` methods."""
    for attr in list(vars(cls)):
        if not attr.startswith("_op_"):
            continue
        describe = getattr(cls, attr)
        name = attr[len("_op_"):]

        def make(describe: Callable[..., OpSpec]):
            def sync(self, *args: Any, timeout: Optional[float] = None, **kwargs: Any) -> Any:
                op, parse = describe(self, *args, **kwargs)
                return self._coord._call(op, parse, timeout)

            async def asynchronous(self, *args: Any, timeout: Optional[float] = None, **kwargs: Any) -> Any:
                op, parse = describe(self, *args, **kwargs)
                return await self._coord._call_async(op, parse, timeout)

            return sync, asynchronous

        sync, asynchronous = make(describe)
        for fn, fn_name in ((sync, name), (asynchronous, f"{name}_async")):
            fn.__name__ = fn_name
            fn.__qualname__ = f"{cls.__name__}.{fn_name}"
            fn.__doc__ = describe.__doc__
            setattr(cls, fn_name, fn)
    return cls


class _Part:
    def __init__(self, coord: Any) -> None:
        self._coord = coord


def _new_item(
    work_type: str = "selfplay",
    *,
    priority: int = 50,
    config: Optional[Dict[str, Any]] = None,
    work_id: Optional[str] = None,
    timeout_seconds: float = 3600.0,
    max_attempts: int = 3,
    depends_on: Optional[Sequence[str]] = None,
) -> Dict[str, Any]:
    return {
        "work_id": work_id if work_id is not None else new_work_id(),
        "work_type": work_type,
        "priority": int(priority),
        "config": {} if config is None else config,
        "timeout_seconds": float(timeout_seconds),
        "max_attempts": int(max_attempts),
        "depends_on": list(depends_on or []),
    }


@_operations
class WorkQueue(_Part):
    """The replicated work queue (``work_items`` semantics of the orchestrator)."""

    def _op_add(self, work_type: str = "selfplay", *, priority: int = 50, config: Optional[Dict[str, Any]] = None,
                work_id: Optional[str] = None, timeout_seconds: float = 3600.0, max_attempts: int = 3,
                depends_on: Optional[Sequence[str]] = None, force: bool = False,
                request_id: Optional[str] = None) -> OpSpec:
        """Adds one item; returns its ``work_id`` (generated when not given)."""
        item = _new_item(work_type, priority=priority, config=config, work_id=work_id,
                         timeout_seconds=timeout_seconds, max_attempts=max_attempts, depends_on=depends_on)
        return _write({"work_add": {"item": item, "force": bool(force)}}, _work_id, request_id)

    def _op_add_batch(self, items: List[Dict[str, Any]], *, force: bool = False,
                      request_id: Optional[str] = None) -> OpSpec:
        """Adds 1-100 items atomically (all or none); returns their ids in order."""
        built = [_new_item(**dict(item)) for item in items]
        return _write({"work_add_batch": {"items": built, "force": bool(force)}}, _ids("work_ids"), request_id)

    def _op_claim(self, work_id: str, node_id: str, *, request_id: Optional[str] = None) -> OpSpec:
        """Claims one item for ``node_id``; False when it is not claimable."""
        return _write({"work_claim": {"work_id": work_id, "node_id": node_id}}, _bool, request_id)

    def _op_claim_next(self, node_id: str, capabilities: Optional[Sequence[str]] = None, *,
                       request_id: Optional[str] = None) -> OpSpec:
        """Claims the first claimable item (priority, then age, then id) whose type is in ``capabilities``."""
        caps = None if capabilities is None else list(capabilities)
        return _write({"work_claim_next": {"node_id": node_id, "capabilities": caps}}, _item, request_id)

    def _op_start(self, work_id: str, node_id: Optional[str] = None, *, request_id: Optional[str] = None) -> OpSpec:
        """claimed -> running (by the claimant when ``node_id`` is given)."""
        return _write({"work_start": {"work_id": work_id, "node_id": node_id}}, _bool, request_id)

    def _op_complete(self, work_id: str, result: Any = None, node_id: Optional[str] = None, *,
                     request_id: Optional[str] = None) -> OpSpec:
        """claimed|running -> completed with ``result``."""
        return _write({"work_complete": {"work_id": work_id, "result": result, "node_id": node_id}}, _bool, request_id)

    def _op_fail(self, work_id: str, error: str = "", node_id: Optional[str] = None, *,
                 request_id: Optional[str] = None) -> OpSpec:
        """Back to pending while attempts remain, else failed."""
        return _write({"work_fail": {"work_id": work_id, "error": str(error), "node_id": node_id}}, _bool, request_id)

    def _op_release(self, work_id: str, node_id: Optional[str] = None, *, request_id: Optional[str] = None) -> OpSpec:
        """claimed|running -> pending, giving the attempt back."""
        return _write({"work_release": {"work_id": work_id, "node_id": node_id}}, _bool, request_id)

    def _op_cancel(self, work_id: str, *, request_id: Optional[str] = None) -> OpSpec:
        """Any non-terminal state -> cancelled."""
        return _write({"work_cancel": {"work_id": work_id}}, _bool, request_id)

    def _op_check_timeouts(self, *, request_id: Optional[str] = None) -> OpSpec:
        """Requeues (or times out) claims older than their ``timeout_seconds``; returns their ids."""
        return _write("work_check_timeouts", _ids("ids"), request_id)  # type: ignore[arg-type]

    def _op_get(self, work_id: str, *, stale_ok: bool = False) -> OpSpec:
        """One item as a dict, or None."""
        return _read({"work_get": {"work_id": work_id}}, stale_ok=stale_ok)

    def _op_list(self, status: Optional[str] = None, node_id: Optional[str] = None, limit: int = 100, *,
                 stale_ok: bool = False) -> OpSpec:
        """Items by status and/or claimant, in claim order."""
        return _read({"work_list": {"status": status, "node_id": node_id, "limit": int(limit)}}, stale_ok=stale_ok)

    def _op_history(self, limit: int = 50, status: Optional[str] = None, *, stale_ok: bool = False) -> OpSpec:
        """Finished items, newest first."""
        return _read({"work_history": {"limit": int(limit), "status": status}}, stale_ok=stale_ok)

    def _op_stats(self, *, stale_ok: bool = False) -> OpSpec:
        """Counts by status and type, totals, backpressure flag."""
        return _read("work_stats", stale_ok=stale_ok)  # type: ignore[arg-type]


@_operations
class Jobs(_Part):
    """Job assignments."""

    def _op_assign(self, job_id: str, node_id: str, data: Any = None, *, request_id: Optional[str] = None) -> OpSpec:
        """Assigns (or reassigns) a job to a node."""
        return _write({"job_assign": {"job_id": job_id, "node_id": node_id, "data": data}}, _bool, request_id)

    def _op_start(self, job_id: str, *, request_id: Optional[str] = None) -> OpSpec:
        """assigned -> running."""
        return _write({"job_start": {"job_id": job_id}}, _bool, request_id)

    def _op_complete(self, job_id: str, result: Any = None, *, request_id: Optional[str] = None) -> OpSpec:
        """-> completed with ``result``."""
        return _write({"job_complete": {"job_id": job_id, "result": result}}, _bool, request_id)

    def _op_fail(self, job_id: str, error: str = "", *, request_id: Optional[str] = None) -> OpSpec:
        """-> failed with ``error``."""
        return _write({"job_fail": {"job_id": job_id, "error": str(error)}}, _bool, request_id)

    def _op_get(self, job_id: str, *, stale_ok: bool = False) -> OpSpec:
        """One job as a dict, or None."""
        return _read({"job_get": {"job_id": job_id}}, stale_ok=stale_ok)

    def _op_for_node(self, node_id: str, *, stale_ok: bool = False) -> OpSpec:
        """A node's active jobs."""
        return _read({"jobs_for_node": {"node_id": node_id}}, stale_ok=stale_ok)

    def _op_stats(self, *, stale_ok: bool = False) -> OpSpec:
        """Counts by status, overall and per node."""
        return _read("job_stats", stale_ok=stale_ok)  # type: ignore[arg-type]


@_operations
class Locks(_Part):
    """Replicated locks with fencing tokens. ``holder=None`` means this node's id."""

    def _holder(self, holder: Optional[str]) -> str:
        return self._coord.node_id if holder is None else str(holder)

    def _op_acquire(self, name: str, holder: Optional[str] = None, ttl: float = 300.0, *,
                    request_id: Optional[str] = None) -> OpSpec:
        """Returns the fencing token (grows with every new grant), or None while another holder has it."""
        ttl_us = int(float(ttl) * 1_000_000)
        return _write({"lock_acquire": {"name": name, "holder": self._holder(holder), "ttl_us": ttl_us}},
                      _token, request_id)

    def _op_release(self, name: str, holder: Optional[str] = None, *, request_id: Optional[str] = None) -> OpSpec:
        """Releases a lock held by ``holder``; False otherwise."""
        return _write({"lock_release": {"name": name, "holder": self._holder(holder)}}, _bool, request_id)

    def _op_holder(self, name: str, *, stale_ok: bool = False) -> OpSpec:
        """``{holder, token, ...}`` or None when free or expired."""
        return _read({"lock_holder": {"name": name}}, stale_ok=stale_ok)


_MISSING = object()


@_operations
class KV(_Part):
    """A replicated key/value map of JSON values."""

    def _op_get(self, key: str, stale_ok: bool = False) -> OpSpec:
        """The value, or None."""
        return _read({"kv_get": {"key": key}}, stale_ok=stale_ok)

    def _op_set(self, key: str, value: Any, *, request_id: Optional[str] = None) -> OpSpec:
        """Sets a value."""
        return _write({"kv_set": {"key": key, "value": value}}, lambda _r: None, request_id)

    def _op_delete(self, key: str, *, request_id: Optional[str] = None) -> OpSpec:
        """Deletes a key; False when it did not exist."""
        return _write({"kv_delete": {"key": key}}, _bool, request_id)

    def _op_compare_and_set(self, key: str, expected: Any, new: Any, *, request_id: Optional[str] = None) -> OpSpec:
        """Sets ``new`` only if the current value equals ``expected`` (None = absent; new None = delete)."""
        return _write({"kv_compare_and_set": {"key": key, "expected": expected, "new": new}}, _bool, request_id)

    def _op_list(self, prefix: str = "", *, stale_ok: bool = False) -> OpSpec:
        """Every key with the prefix and its value, sorted."""
        return _read({"kv_list": {"prefix": prefix}}, stale_ok=stale_ok)
