"""What a scan or a reconcile did: counts for the summary line, the daemon's log and tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ScanReport:
    """What a scan did, for the summary line and for tests."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    purged: int = 0  # forgotten: missing for longer than scan.purge_after_days
    unchanged: int = 0
    featurised: int = 0  # through the fast pass (every extractor that is not deep)
    deep_featurised: int = 0  # deep blocks added by the deep pass
    deep_failed: int = 0  # deep pass not done (the track stays searchable on its fast blocks)
    failed: Counter = field(default_factory=Counter)
    unavailable: list[tuple[str, str]] = field(default_factory=list)
    mass_delete_blocked: list[tuple[str, int, int]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # folders not read (path, why): kept as they were
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason class) left out on purpose
    interrupted: bool = False
    seconds: float = 0.0
    fast_seconds: float | None = None  # from the start to the end of the fast pass (its tracks searchable)
    changed_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.moved} moved",
                 f"{self.removed} removed", f"{self.featurised} featurised"]
        failed = sum(self.failed.values())
        if failed:
            parts.append(f"{failed} failed (" + ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) + ")")
        else:
            parts.append("0 failed")
        if self.skipped or self.unreadable:
            kinds = Counter(reason for _, reason in self.skipped) + Counter({"unreadable_folder": len(self.unreadable)})
            parts.append(f"{len(self.skipped) + len(self.unreadable)} skipped ("
                         + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if v) + ")")
        if self.deep_featurised or self.deep_failed:
            parts.append(f"deep pass {self.deep_featurised} done" + (f", {self.deep_failed} not done"
                                                                     if self.deep_failed else ""))
        if self.purged:
            parts.append(f"{self.purged} forgotten (missing too long)")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"
