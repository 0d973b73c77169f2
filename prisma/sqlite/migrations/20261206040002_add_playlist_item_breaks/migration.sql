-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_PlaylistItem" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "virtualLiveId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "vodResourceId" TEXT NOT NULL,
    "breaks" TEXT NOT NULL DEFAULT '[]',
    CONSTRAINT "PlaylistItem_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "PlaylistItem_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_PlaylistItem" ("id", "position", "virtualLiveId", "vodResourceId") SELECT "id", "position", "virtualLiveId", "vodResourceId" FROM "PlaylistItem";
DROP TABLE "PlaylistItem";
ALTER TABLE "new_PlaylistItem" RENAME TO "PlaylistItem";
CREATE INDEX "PlaylistItem_vodResourceId_idx" ON "PlaylistItem"("vodResourceId");
CREATE UNIQUE INDEX "PlaylistItem_virtualLiveId_position_key" ON "PlaylistItem"("virtualLiveId", "position");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
