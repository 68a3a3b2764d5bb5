"""`depthstudio models list | info NAME | download NAME | export-onnx NAME -o FILE`."""
from __future__ import annotations

import json
from pathlib import Path

from depthstudio.errors import ModelError
from depthstudio.models.catalogue import CATALOGUE, DEFAULT_MODEL, get_model_info


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list, inspect, download and convert depth models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    msub.add_parser("list", help="the model catalogue with licences").set_defaults(func=run_list)
    info = msub.add_parser("info", help="everything about one model")
    info.add_argument("name")
    info.set_defaults(func=run_info)
    dl = msub.add_parser("download", help="fetch a model's weights into the Hugging Face cache")
    dl.add_argument("name")
    dl.add_argument("--backend", default="auto", choices=("auto", "onnx", "torch"))
    dl.set_defaults(func=run_download)
    ex = msub.add_parser("export-onnx", help="convert a transformers model (name or folder) to ONNX with dynamic size")
    ex.add_argument("name", help="catalogue name or local transformers folder")
    ex.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    ex.add_argument("--opset", type=int, default=17)
    ex.set_defaults(func=run_export)


def run_list(args) -> int:
    from depthstudio.models.weights import cached_status

    print(f"{'name':<26} {'family':<40} {'params':>7}  {'outputs':<26} {'licence':<25} {'backends':<10} cached")
    for info in CATALOGUE.values():
        cached = [b for b, ok in cached_status(info).items() if ok]
        default = " (default)" if info.name == DEFAULT_MODEL else ""
        print(f"{info.name:<26} {info.family:<40} {info.size_label:>7}  {','.join(info.outputs):<26} {info.licence:<25} "
              f"{','.join(info.backends):<10} {','.join(cached) or '-'}{default}")
    print("\n--model also takes a local .onnx file or a folder with config.json + model.safetensors.")
    return 0


def run_info(args) -> int:
    from depthstudio.models.weights import cached_status

    info = get_model_info(args.name)
    data = info.to_dict()
    data["files"] = {b: info.files_needed(b) for b in info.backends}
    data["cached"] = cached_status(info)
    print(json.dumps(data, indent=2))
    return 0


def run_download(args) -> int:
    from depthstudio.models.weights import resolve

    source = resolve(args.name, args.backend)
    print(f"{args.name}: {source.format} weights at {source.path}")
    return 0


def run_export(args) -> int:
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.weights import resolve

    source = resolve(args.name, "torch")
    if source.format != "transformers":
        raise ModelError(f"{args.name}: export-onnx needs a transformers model (config.json + model.safetensors)")
    target = export_onnx(source.path, args.output, model_id=source.model_id, opset=args.opset)
    print(f"wrote {target} (dynamic height/width, checked against PyTorch at several sizes)")
    return 0
