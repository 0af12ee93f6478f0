// Registers pair style mace (ML-MACE of ACEsuit/lammps) as a LAMMPS plugin.
#include "lammpsplugin.h"
#include "pair_mace.h"  // from src/ML-MACE of an ACEsuit/lammps checkout (-I)

using namespace LAMMPS_NS;

static Pair *mace_creator(LAMMPS *lmp) { return new PairMACE(lmp); }

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  auto reg = (lammpsplugin_regfunc) regfunc;
  lammpsplugin_t p;
  p.version = LPSC_LAMMPS_VERSION;
  p.style = "pair";
  p.name = "mace";
  p.info = "MACE pair style (ML-MACE of ACEsuit/lammps), built by lpsc-lmp";
  p.author = "ML-MACE authors";
  p.creator.v1 = (lammpsplugin_factory1 *) &mace_creator;
  p.handle = handle;
  (*reg)(&p, lmp);
}
