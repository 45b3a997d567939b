"""Video in and out: decoding with exact frame indices, writing H.264, previews with boxes
drawn, single frames as images, generated clips, and files written whole or not at all."""
