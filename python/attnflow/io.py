"""Reading attnflow data files into numpy (docs/cli.md, "Data files")."""
import numpy as np


def _number(s):
    try:
        return float(s)
    except ValueError:
        return None


class Data:
    """One attnflow data file.

    meta     the '# key: value' header lines as a dict of strings ('version',
             'command', parameters, diagnostics; first occurrence wins)
    columns  the names of '# columns:' (None if the file has none)
    blocks   list of 2-D arrays, one per block (blocks are separated by two
             blank lines; single blank lines split a block into scans)
    times    the time of each block ('# t:' lines, or the 't' column)

    d['name'] is a column: 1-D for a one-block file, (blocks, rows) when every
    block has the same length. d.positions reshapes a trajectory
    ('t i x1 .. xd') to (times, n, d); d.grid('rho') reshapes a 2-D grid
    (scans of equal length) to (blocks, N1, N2)."""

    def __init__(self, path):
        self.path = str(path)
        self.meta = {}
        self.columns = None
        self.block_columns = {}
        self.blocks = []
        self._scans = []
        self._block_t = []
        self._parse()

    def _parse(self):
        rows, scans, blank, pending_t = [], [], 0, None

        def close_block():
            nonlocal rows, scans, pending_t
            if rows:
                width = {len(r) for r in rows}
                if len(width) != 1:
                    raise ValueError(f"{self.path}: block {len(self.blocks)}: ragged rows")
                self.blocks.append(np.array(rows, dtype=float))
                self._scans.append(scans + [len(rows)])
                self._block_t.append(pending_t)
                rows, scans, pending_t = [], [], None

        with open(self.path) as f:
            for lineno, line in enumerate(f, 1):
                s = line.strip()
                if not s:
                    blank += 1
                    continue
                if s.startswith("#"):
                    body = s[1:].strip()
                    if lineno == 1 and body.startswith("attnflow "):
                        self.meta["version"] = body.split(None, 1)[1]
                    elif body.startswith("columns"):
                        head, _, names = body.partition(":")
                        names = names.split()
                        if "block" in head:
                            k = int("".join(c for c in head if c.isdigit()))
                            self.block_columns[k] = names
                            if self.columns is None:
                                self.columns = names
                        else:
                            self.columns = names
                    elif body.startswith("t:"):
                        close_block()
                        pending_t = float(body[2:])
                    elif ":" in body:
                        key, _, value = body.partition(":")
                        self.meta.setdefault(key.strip(), value.strip())
                    continue  # a '#' line between blocks keeps their separation
                fields = s.split()
                values = [_number(x) for x in fields]
                if None in values:  # 'key value' lines (summary.txt)
                    if len(fields) == 2 and values[0] is None:
                        v = values[1]
                        self.meta.setdefault(fields[0], fields[1] if v is None else v)
                        blank = 0
                        continue
                    raise ValueError(f"{self.path}:{lineno}: not a number in {s!r}")
                if blank >= 2:
                    close_block()
                elif blank == 1 and rows:
                    scans.append(len(rows))
                blank = 0
                rows.append(values)
        close_block()

    # ---- views ----
    @property
    def array(self):
        """The single block (2-D), or all blocks stacked (3-D) if equal in shape."""
        if len(self.blocks) == 1:
            return self.blocks[0]
        return np.stack(self.blocks)

    def _columns_of(self, k):
        return self.block_columns.get(k, self.columns)

    def __getitem__(self, name):
        cols = [self._columns_of(k) for k in range(len(self.blocks))]
        parts = []
        for k, b in enumerate(self.blocks):
            if cols[k] and name in cols[k]:
                parts.append(b[:, cols[k].index(name)])
        if not parts:
            raise KeyError(f"{self.path}: no column {name!r} (columns: {self.columns})")
        if len(parts) == 1:
            return parts[0]
        if len({len(p) for p in parts}) == 1:
            return np.stack(parts)
        return parts

    def __contains__(self, name):
        return any(c and name in c for c in [self.columns, *self.block_columns.values()])

    @property
    def times(self):
        if any(t is not None for t in self._block_t):
            return np.array(self._block_t, dtype=float)
        if self.columns and self.columns[0] == "t":
            if len(self.blocks) > 1:
                return np.array([b[0, 0] for b in self.blocks])
            return self.blocks[0][:, 0] if self.blocks else np.empty(0)
        return None

    @property
    def positions(self):
        """A trajectory's tokens as (times, n, d)."""
        if not (self.columns and self.columns[:2] == ["t", "i"]):
            raise ValueError(f"{self.path}: not a trajectory (columns 't i x1 ...')")
        return np.stack([b[:, 2:] for b in self.blocks])

    def grid(self, name):
        """Column `name` of a 2-D grid file as (blocks, N1, N2) (one scan per x1)."""
        out = []
        for k, b in enumerate(self.blocks):
            cols = self._columns_of(k)
            ends = self._scans[k]
            lens = np.diff([0] + ends)
            if len(set(lens)) != 1:
                raise ValueError(f"{self.path}: block {k}: scans of unequal length")
            out.append(b[:, cols.index(name)].reshape(len(lens), lens[0]))
        return np.stack(out)

    def __repr__(self):
        shapes = [b.shape for b in self.blocks]
        return f"<attnflow.Data {self.path}: columns {self.columns}, blocks {shapes}>"


def load(path):
    """Reads any attnflow data file (trajectories, observables, matrices,
    logs, heat snapshots, sweeps, summary.txt) into an attnflow.Data."""
    return Data(path)
