"""Reference data to trained models: read calculations, build datasets, train each
architecture, evaluate train/test errors (the paper's Table 1).

Data flow: readers (:mod:`.readers`) -> dataset (:mod:`.dataset`) -> training (:mod:`.train`
over :mod:`.deepmd`, :mod:`.mace`, :mod:`.nequip`) -> registered model -> errors
(:mod:`.evaluate`, :mod:`.predict`).
"""
