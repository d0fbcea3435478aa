"""kmodel files: parse v3/v4/v5 (format), build v3/v4 of any size (build), write them on the
board (onboard), compile real v5 models with nncase (nncase), and the fixture set (fixtures)."""
