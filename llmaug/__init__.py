"""llmaug: LLM-based data augmentation (LLMRec, WSDM'24) for RecBole recommenders."""

__version__ = "0.1.0"
