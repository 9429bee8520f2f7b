"""The adversarial reliability suite (issue 10): torture, crashes, disk faults, hostile content
and file-system attacks. ``docs/reliability.md`` lists the guarantees each test checks."""
