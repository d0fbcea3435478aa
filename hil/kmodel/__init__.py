"""kmodel files: parse v3/v4/v5 (format), build v3/v4 of any size (build, layout, family), the
part a flash load reads (lead), compile real v5 models with nncase (nncase), and the fixture set
(fixtures). The program that writes a v3 model on the board is device code:
hil.device.micropython.code.kmodel_writer."""
