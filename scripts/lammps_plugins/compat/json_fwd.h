// atom.h names LAMMPS's JSON type only in a declaration this plugin never calls.
#ifndef LPSC_JSON_FWD_H
#define LPSC_JSON_FWD_H
namespace LAMMPS_NS {
struct json;
}
#endif
