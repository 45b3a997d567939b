"""The IBFP network, one module per part of the paper: backbone, CSCS, IBU, head, online branch."""
