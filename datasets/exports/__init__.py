"""Datasets out: deterministic streamed archives (zip, tar) and the formats people train with
(ImageFolder, COCO, Pascal VOC, YOLO, CSV and JSON Lines manifests, WebDataset shards). Pure
Python: the service feeds records in, nothing here touches the database."""
