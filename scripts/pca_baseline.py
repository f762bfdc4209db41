"""PCA reconstruction baseline on exactly the split aejax trains and tests on.

    python scripts/pca_baseline.py [--dataset fashion_mnist] [--components 32 64] [--json FILE]

Fits sklearn PCA on the training split (the 55k images fit() trains on) and prints the test
MSE per pixel, the number the autoencoders' test/mse is compared with.
"""

import argparse
import json

from aejax.data import load_dataset
from aejax.evaluate.reconstruction import pca_reconstruction_mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--components", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--data-dir")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args()
    kwargs = {"val_size": 5000} if args.dataset == "fashion_mnist" else {}
    dataset = load_dataset(args.dataset, data_dir=args.data_dir, **kwargs)
    print(f"{'dataset':<15}{'components':>11}{'test MSE/pixel':>16}")
    rows = []
    for k in args.components:
        rows.append({"dataset": args.dataset, "components": k,
                     "test_mse": pca_reconstruction_mse(dataset.train.x, dataset.test.x, k)})
        print(f"{args.dataset:<15}{k:>11}{rows[-1]['test_mse']:>16.5f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
