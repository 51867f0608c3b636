//! winmail.dat (TNEF) unpacking.
