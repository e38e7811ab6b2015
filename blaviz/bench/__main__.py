"""``python -m blaviz.bench {cpu,gpu,decode-warps,ab} [--out PATH] [--quick] [--key K --values A,B]
[--variants "name:k=v,k=v;name2:..."]``, and ``python -m blaviz.bench regs`` (registers and spills
for sm_90 without a GPU: :mod:`blaviz.bench.regs`)."""
import argparse
import sys

from blaviz.bench._common import check_writable, parse_value


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["regs"]:            # its own options (python -m blaviz.bench regs --help)
        from blaviz.bench.regs import main as regs_main
        return regs_main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m blaviz.bench", description=__doc__)
    ap.add_argument("which", choices=["cpu", "gpu", "decode-warps", "ab", "merge"])
    ap.add_argument("inputs", nargs="*", help="merge: benchmark JSONs of one commit to join into --out")
    ap.add_argument("--out", default=None, help="JSON path (default results/bench/{cpu_pytorch,h200}.json)")
    ap.add_argument("--quick", action="store_true", help="smaller sweep (smoke test)")
    ap.add_argument("--sections", default=None,
                    help="gpu: comma-separated subset of variants,bla,decode,flex,cudnn,gsa (default all)")
    ap.add_argument("--launch", default=None,
                    help='gpu: LaunchConfig fields for the whole run, "score_dot=tf32rn,out_warps=8"')
    ap.add_argument("--key", default=None, help="ab: the LaunchConfig field (or C, the chunk size) to compare")
    ap.add_argument("--values", default=None, help="ab: comma-separated values (true/false, integers or strings)")
    ap.add_argument("--variants", default=None,
                    help='ab: named sets of LaunchConfig fields, "base:;fast:score_dot=tf32rn;c32:C=32"')
    args = ap.parse_args(argv)
    if args.inputs and args.which != "merge":
        ap.error(f"{args.which} takes no positional arguments, got {' '.join(args.inputs)}")
    if args.out:
        try:  # before the benchmark runs, not after: a result that cannot be saved is lost time
            check_writable(args.out)
        except OSError as e:
            ap.error(f"--out {args.out}: cannot write there ({e.strerror or e})")
    if args.which == "ab":
        if args.variants:
            from blaviz.bench.gpu import parse_variants, run_variants
            return run_variants(parse_variants(args.variants), out=args.out)
        if not args.key or not args.values:
            ap.error("ab needs --key and --values, or --variants")
        from blaviz.bench.gpu import run_ab
        return run_ab(args.key, [parse_value(v) for v in args.values.split(",")], out=args.out)
    if args.which == "merge":
        if len(args.inputs) < 2 or not args.out:
            ap.error("merge needs two or more input files and --out")
        from blaviz.bench.gpu import merge
        merge(args.inputs, args.out)
        return 0
    if args.which == "gpu":
        from blaviz.bench.gpu import SECTIONS, run as run_gpu
        sections = tuple(x.strip() for x in args.sections.split(",")) if args.sections else SECTIONS
        launch = None
        if args.launch:
            from blaviz.bench.gpu import parse_launch
            launch = parse_launch(args.launch)
        return run_gpu(out=args.out, quick=args.quick, sections=sections, launch=launch)
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
