"""Pure domain model: no I/O, no imports from the rest of the harness.

- `builds`: the Windows build table and version thresholds.
- `conditions`: the vocabulary (enums) and the `Conditions` of one scenario.
- `policy`: the oracle, conditions -> expectation with evidence levels.
- `inf`: the INF reader.
"""
