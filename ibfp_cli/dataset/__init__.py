"""Datasets out: frames and boxes written as a YOLO or COCO image dataset (`export`,
`layout`), split into train and val by video or segment (`split`)."""
