-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_ProgrammeEntry" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "programmeId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "start" TEXT NOT NULL,
    "durationSeconds" REAL,
    "breaks" TEXT NOT NULL DEFAULT '[]',
    CONSTRAINT "ProgrammeEntry_programmeId_fkey" FOREIGN KEY ("programmeId") REFERENCES "Programme" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_ProgrammeEntry" ("durationSeconds", "id", "position", "programmeId", "start") SELECT "durationSeconds", "id", "position", "programmeId", "start" FROM "ProgrammeEntry";
DROP TABLE "ProgrammeEntry";
ALTER TABLE "new_ProgrammeEntry" RENAME TO "ProgrammeEntry";
CREATE UNIQUE INDEX "ProgrammeEntry_programmeId_position_key" ON "ProgrammeEntry"("programmeId", "position");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
