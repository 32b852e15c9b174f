"""BitNet b1.58 quantisation (arXiv 2402.17764), pure PyTorch: ternary weights, 8-bit
activations, straight-through training, base-3 packing at 1.6 bits per weight, export/reload
and size accounting. See docs/quant.md.

    from forge.quant import convert_to_ternary, save_ternary, load_ternary, size_report
    names = convert_to_ternary(model)          # nn.Linear -> TernaryLinear (STE), in place
    save_ternary(model, "out/")                # packed safetensors + quantization.json
    model2 = load_ternary("out/")              # same logits as `model` in eval mode
    size_report("out/")["linear_bits_per_weight"]   # ~1.6
    model3 = load_model(any_artifact_dir)      # fp or packed ternary, whichever it is
"""
from forge.quant.calibrate import LayerStats, calibrate
from forge.quant.convert import DEFAULT_KEEP, convert_to_ternary, ternary_layers
from forge.quant.export import load_ternary, round_to_dtype, save_ternary
from forge.quant.load import is_ternary, load_model
from forge.quant.manifest import QUANT_FILE, WEIGHTS_FILE, read_quantization
from forge.quant.pack import pack_trits, packed_length, unpack_trits
from forge.quant.quantize import quantize_activations, quantize_weights, straight_through
from forge.quant.size import size_report
from forge.quant.ternary_linear import TernaryLinear

__all__ = ["DEFAULT_KEEP", "QUANT_FILE", "WEIGHTS_FILE", "LayerStats", "TernaryLinear",
           "calibrate", "convert_to_ternary", "is_ternary", "load_model", "load_ternary",
           "round_to_dtype", "pack_trits", "packed_length", "quantize_activations",
           "quantize_weights", "read_quantization", "save_ternary", "size_report",
           "straight_through", "ternary_layers", "unpack_trits"]
