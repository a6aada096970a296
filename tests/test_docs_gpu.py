"""What docs/gpu.md says about compiling: ``torch.compile`` turns torch's distribution
validation off for the rest of the process. Run in a fresh process, since the switch is
process-wide."""
import subprocess
import sys
import textwrap

CODE = textwrap.dedent("""
    import torch
    from torch.distributions import Distribution, Normal

    before = Distribution._validate_args
    step = torch.compile(lambda x: x + 1, backend="eager")
    after = Distribution._validate_args
    try:
        Normal(0.0, -1.0)  # a negative scale is accepted silently once validation is off
        accepted = True
    except ValueError:
        accepted = False
    Distribution.set_default_validate_args(True)
    print(before, after, accepted, Distribution._validate_args)
""")


def test_torch_compile_turns_distribution_validation_off_for_the_process():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "True", "True"]
