"""The ML core: ONNX encoder, hierarchical head, calibration, decision policy, registry.

Nothing here imports fastapi or torch.
"""
