// Registers pair styles nequip and allegro (pair_nequip_allegro) as a LAMMPS plugin.
#include "lammpsplugin.h"
#include "pair_nequip_allegro.h"  // from the pair_nequip_allegro checkout (-I)

using namespace LAMMPS_NS;

static Pair *nequip_creator(LAMMPS *lmp) { return new PairNequIPAllegro<true>(lmp); }
static Pair *allegro_creator(LAMMPS *lmp) { return new PairNequIPAllegro<false>(lmp); }

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  auto reg = (lammpsplugin_regfunc) regfunc;
  lammpsplugin_t p;
  p.version = LPSC_LAMMPS_VERSION;
  p.style = "pair";
  p.info = "NequIP/Allegro pair styles (mir-group/pair_nequip_allegro), built by lpsc-lmp";
  p.author = "pair_nequip_allegro authors";
  p.handle = handle;
  p.name = "nequip";
  p.creator.v1 = (lammpsplugin_factory1 *) &nequip_creator;
  (*reg)(&p, lmp);
  p.name = "allegro";
  p.creator.v1 = (lammpsplugin_factory1 *) &allegro_creator;
  (*reg)(&p, lmp);
}
