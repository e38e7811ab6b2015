"""``python -m blaviz.bench {cpu,gpu,decode-warps} [--out PATH] [--quick]``."""
import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blaviz.bench", description=__doc__)
    ap.add_argument("which", choices=["cpu", "gpu", "decode-warps"])
    ap.add_argument("--out", default=None, help="JSON path (default results/bench/{cpu_pytorch,h200}.json)")
    ap.add_argument("--quick", action="store_true", help="smaller sweep (smoke test)")
    args = ap.parse_args(argv)
    if args.which == "decode-warps":
        from blaviz.bench.gpu import run_decode_warps
        return run_decode_warps(out=args.out)
    if args.which == "cpu":
        from blaviz.bench.cpu import run
    else:
        from blaviz.bench.gpu import run
    return run(out=args.out, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
