"""Qt-free, torch-free core: image and trimap I/O, trimap operations, compositing, metrics."""
