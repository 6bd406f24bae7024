"""The model zoo: classic CNNs adapted to 32x32 inputs (filled in by the zoo issue)."""
