"""The vision-language model's parts that run without training code.

- ``questions/``: questions drawn from the phantoms' ground truth (surgical clips, slides) and
  the scoring of an answer against them.
- ``visual/``: the visual tokens the model reads (surgical frames through the segmenter's image
  encoder with the instrument evidence, slide regions through the slide package's patch
  encoder) and the clips and slides they come from.
- ``answering/``: answering a question with a package (or a Hugging Face folder): the language
  model on ONNX Runtime or torch, batched greedy decoding, and the answer engine over them.
- ``model/``: the model's torch modules, which training builds and the torch runtime loads.
- ``text_tokenizer`` and ``prompt_layout``: the text side every part shares.
"""
