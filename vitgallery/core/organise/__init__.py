"""Organising a library: arrange a folder by likeness (arrange), cluster it into automatic groups
(groups), sort photos into folders by example (sort), and keep the library current while its folder
changes (watch). Plain Python like the rest of the core: long jobs take a progress callback and a
cancel event (vectors.OrganiseProgress, vectors.OrganiseCancelled)."""
